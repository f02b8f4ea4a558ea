import DSIModel
import DSITensor
import Foundation

/// k-means (Lloyd's algorithm with k-means++ seeding) on rows of a (n, d) matrix;
/// distances through sgemm. Deterministic for a generator state.
public enum KMeans {
    /// Groups `rows` into at most k clusters (members in increasing row order).
    ///
    /// With `capacity`, no cluster ends with more members than that: when Lloyd's
    /// assignment leaves one larger, the final assignment goes through the (point,
    /// centre) pairs from nearest to farthest and gives each point the nearest centre
    /// that still has room (a greedy balanced assignment). Without it, or when every
    /// cluster fits, the result is plain k-means.
    public static func cluster(_ x: Tensor, rows: [Int], k: Int, iterations: Int = 25, capacity: Int? = nil, rng: inout SeededRNG)
        -> [[Int]]
    {
        let n = rows.count
        let d = x.shape[1]
        let k = min(k, n)
        let pts = Tensor(zeros: [n, d])
        for (i, r) in rows.enumerated() { (pts.data + i * d).update(from: x.data + r * d, count: d) }
        let norms = (0..<n).map { i in (0..<d).reduce(Float(0)) { $0 + pts[i * d + $1] * pts[i * d + $1] } }
        // k-means++ seeding.
        let centers = Tensor(zeros: [k, d])
        var first = rng.int(below: n)
        (centers.data).update(from: pts.data + first * d, count: d)
        var best = (0..<n).map { i in dist2(pts, i, centers, 0, d) }
        for c in 1..<k {
            let total = best.reduce(0, +)
            var pick = n - 1
            if total > 0 {
                var u = Float(rng.uniform()) * total
                for i in 0..<n {
                    u -= best[i]
                    if u <= 0 {
                        pick = i
                        break
                    }
                }
            } else {
                pick = rng.int(below: n)
            }
            first = pick
            (centers.data + c * d).update(from: pts.data + pick * d, count: d)
            for i in 0..<n { best[i] = min(best[i], dist2(pts, i, centers, c, d)) }
        }
        var assign = [Int](repeating: -1, count: n)
        let dots = Tensor(zeros: [n, k])
        for _ in 0..<iterations {
            // ‖p − c‖² = ‖p‖² − 2 p·c + ‖c‖²; p·c for all pairs in one product.
            BLAS.sgemm(transB: true, m: n, n: k, k: d, a: pts.data, lda: d, b: centers.data, ldb: d, c: dots.data, ldc: k, parallel: true)
            let cn = (0..<k).map { c in (0..<d).reduce(Float(0)) { $0 + centers[c * d + $1] * centers[c * d + $1] } }
            var changed = false
            for i in 0..<n {
                var bc = 0
                var bd = Float.infinity
                for c in 0..<k {
                    let dd = norms[i] - 2 * dots[i * k + c] + cn[c]
                    if dd < bd {
                        bd = dd
                        bc = c
                    }
                }
                if assign[i] != bc {
                    assign[i] = bc
                    changed = true
                }
            }
            if !changed { break }
            centers.zero()
            var count = [Int](repeating: 0, count: k)
            for i in 0..<n {
                count[assign[i]] += 1
                let c = centers.data + assign[i] * d
                let p = pts.data + i * d
                for j in 0..<d { c[j] += p[j] }
            }
            for c in 0..<k {
                if count[c] == 0 {
                    // An empty cluster takes the point farthest from its center.
                    var far = 0
                    var fd = -Float.infinity
                    for i in 0..<n {
                        let dd = norms[i] - 2 * dots[i * k + assign[i]]
                        if dd > fd {
                            fd = dd
                            far = i
                        }
                    }
                    (centers.data + c * d).update(from: pts.data + far * d, count: d)
                } else {
                    for j in 0..<d { centers[c * d + j] /= Float(count[c]) }
                }
            }
        }
        if let capacity, capacity * k >= n {
            var sizes = [Int](repeating: 0, count: k)
            for a in assign { sizes[a] += 1 }
            if sizes.max()! > capacity {
                BLAS.sgemm(
                    transB: true, m: n, n: k, k: d, a: pts.data, lda: d, b: centers.data, ldb: d, c: dots.data, ldc: k, parallel: true)
                let cn = (0..<k).map { c in (0..<d).reduce(Float(0)) { $0 + centers[c * d + $1] * centers[c * d + $1] } }
                var pairs: [(dist: Float, point: Int32, center: Int32)] = []
                pairs.reserveCapacity(n * k)
                for i in 0..<n { for c in 0..<k { pairs.append((norms[i] - 2 * dots[i * k + c] + cn[c], Int32(i), Int32(c))) } }
                pairs.sort { $0.dist != $1.dist ? $0.dist < $1.dist : ($0.point != $1.point ? $0.point < $1.point : $0.center < $1.center) }
                assign = [Int](repeating: -1, count: n)
                sizes = [Int](repeating: 0, count: k)
                for p in pairs where assign[Int(p.point)] < 0 && sizes[Int(p.center)] < capacity {
                    assign[Int(p.point)] = Int(p.center)
                    sizes[Int(p.center)] += 1
                }
            }
        }
        var groups = [[Int]](repeating: [], count: k)
        for i in 0..<n { groups[assign[i]].append(rows[i]) }
        return groups
    }

    @inline(__always) static func dist2(_ p: Tensor, _ i: Int, _ c: Tensor, _ j: Int, _ d: Int) -> Float {
        var s: Float = 0
        for t in 0..<d {
            let x = p[i * d + t] - c[j * d + t]
            s += x * x
        }
        return s
    }
}
