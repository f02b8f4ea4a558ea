import DSITensor
import Foundation

/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header
/// length, a JSON header `{name: {"dtype", "shape", "data_offsets": [begin, end]},
/// "__metadata__": {string: string}}` padded with spaces (to 64 bytes with the length), then the tensors'
/// bytes (little-endian Float32 here), back to back.
public enum Safetensors {
    public struct FormatError: Error, CustomStringConvertible {
        public let path: String
        public let message: String
        public var description: String { "\(path): \(message)" }
        public init(path: String, message: String) {
            self.path = path
            self.message = message
        }
    }

    /// Serialises named Float32 buffers (written in the order given; `metadata` as strings).
    /// With `alignment`, laid out as `write` lays it out.
    public static func encode(
        _ tensors: [(name: String, shape: [Int], data: UnsafePointer<Float>)], metadata: [String: String] = [:], alignment: Int = 0
    ) throws -> Data {
        let (header, layout) = try headerData(tensors.map { ($0.name, $0.shape) }, metadata: metadata, alignment: alignment)
        var out = header
        for (t, l) in zip(tensors, layout) {
            out.append(Data(count: l.padBefore))
            out.append(UnsafeBufferPointer(start: t.data, count: t.shape.reduce(1, *)))
        }
        out.append(Data(count: layout.last?.padAfter ?? 0))
        return out
    }

    /// Writes the same bytes as `encode` to `handle`, tensor by tensor, without holding
    /// the file in memory. A tensor without data (nil) is written as zeros.
    ///
    /// With `alignment` (bytes, a multiple of 64), the data section starts at a multiple of
    /// it in the file, every tensor starts at a multiple of it within the data section,
    /// and the file's length is one too. The gaps are filled by zero padding tensors
    /// (`padPrefix`, dtype U8), so the file stays valid safetensors (no holes) and each
    /// tensor can be mapped into memory on its own pages.
    public static func write(
        _ tensors: [(name: String, shape: [Int], data: UnsafePointer<Float>?)], metadata: [String: String] = [:], to handle: FileHandle,
        alignment: Int = 0
    ) throws {
        let (header, layout) = try headerData(tensors.map { ($0.name, $0.shape) }, metadata: metadata, alignment: alignment)
        try handle.write(contentsOf: header)
        let zeros = Data(count: 1 << 20)
        func writeZeros(_ n: Int) throws {
            var bytes = n
            while bytes > 0 {
                let k = min(zeros.count, bytes)
                try handle.write(contentsOf: zeros.prefix(k))
                bytes -= k
            }
        }
        for (t, l) in zip(tensors, layout) {
            try writeZeros(l.padBefore)
            var bytes = t.shape.reduce(1, *) * 4
            if let p = t.data {
                var offset = 0
                while offset < bytes {
                    let n = min(1 << 24, bytes - offset)
                    try handle.write(
                        contentsOf: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: p) + offset, count: n, deallocator: .none))
                    offset += n
                }
            } else {
                try writeZeros(bytes)
            }
        }
        try writeZeros(layout.last?.padAfter ?? 0)
    }

    /// Names of the zero padding tensors of aligned files (skipped by `header`).
    public static let padPrefix = "__pad__."

    /// The 8-byte length and the padded JSON header for tensors laid out back to back
    /// (with `alignment`, each at a multiple of it; see `write`), and each tensor's zero
    /// padding before it (and, for the last, after it).
    static func headerData(_ tensors: [(name: String, shape: [Int])], metadata: [String: String], alignment: Int = 0) throws -> (
        Data, [(padBefore: Int, padAfter: Int)]
    ) {
        precondition(alignment == 0 || alignment % 64 == 0, "alignment \(alignment) is not a multiple of 64 bytes")
        var header: [String: Any] = [:]
        var layout: [(padBefore: Int, padAfter: Int)] = []
        var offset = 0
        func pad(to next: Int) -> Int {
            let n = next - offset
            if n > 0 {
                header[padPrefix + String(header.count)] = ["dtype": "U8", "shape": [n], "data_offsets": [offset, next]]
                offset = next
            }
            return n
        }
        func aligned(_ x: Int) -> Int { alignment > 0 ? (x + alignment - 1) / alignment * alignment : x }
        for t in tensors {
            let before = pad(to: aligned(offset))
            let bytes = t.shape.reduce(1, *) * 4
            header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + bytes]]
            offset += bytes
            layout.append((before, 0))
        }
        if !layout.isEmpty { layout[layout.count - 1].padAfter = pad(to: aligned(offset)) }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad so the data section starts 64-byte aligned (or `alignment`-aligned): a
        // mapping of the file can then be used in place (see `Seq2Seq.mapSafetensors`).
        while (8 + json.count) % max(64, alignment) != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count)
        var n = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(json)
        return (out, layout)
    }

    public struct Entry {
        public let shape: [Int]
        public let range: Range<Int>  // byte range within the data section
    }

    /// Parses the header; returns the entries, the metadata and where the data starts.
    public static func header(_ data: Data, path: String) throws(FormatError) -> (
        entries: [String: Entry], metadata: [String: String], dataStart: Int
    ) {
        func fail(_ m: String) -> FormatError { FormatError(path: path, message: m) }
        guard data.count >= 8 else { throw fail("too short for a safetensors file (\(data.count) bytes)") }
        let n = data.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard n > 0, 8 + n <= data.count else { throw fail("header length \(n) does not fit the file (\(data.count) bytes)") }
        guard let obj = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        let dataSize = data.count - 8 - n
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in obj {
            if name == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let e = value as? [String: Any], let dtype = e["dtype"] as? String,
                let shape = e["shape"] as? [Int], let offs = e["data_offsets"] as? [Int], offs.count == 2
            else { throw fail("tensor \"\(name)\": expected dtype, shape and data_offsets") }
            // Alignment padding (`write(..., alignment:)`): bytes, not a tensor of the model.
            if name.hasPrefix(padPrefix) && dtype == "U8" && shape.count == 1 && offs[0] >= 0 && offs[1] <= dataSize
                && offs[1] - offs[0] == shape[0]
            {
                continue
            }
            guard dtype == "F32" else { throw fail("tensor \"\(name)\": dtype \(dtype), expected F32") }
            guard offs[0] >= 0, offs[1] <= dataSize, offs[1] - offs[0] == shape.reduce(1, *) * 4 else {
                throw fail("tensor \"\(name)\": data_offsets \(offs) do not match shape \(shape) within \(dataSize) data bytes")
            }
            entries[name] = Entry(shape: shape, range: offs[0]..<offs[1])
        }
        return (entries, metadata, 8 + n)
    }

    /// Copies tensor `name` into `into` (which must hold `expectedShape`).
    /// With `fewerRows`, a tensor with fewer rows than `expectedShape` (the rest of its
    /// shape equal) is read into the first rows; the others are left as they are.
    public static func read(
        _ name: String, expectedShape: [Int], from data: Data, entries: [String: Entry], dataStart: Int, into: UnsafeMutablePointer<Float>,
        path: String, release: ((Range<Int>) -> Void)? = nil, fewerRows: Bool = false
    ) throws(FormatError) {
        guard let e = entries[name] else { throw FormatError(path: path, message: "tensor \"\(name)\" is missing") }
        let fits =
            e.shape == expectedShape
            || (fewerRows && e.shape.count == expectedShape.count && !e.shape.isEmpty && e.shape[0] <= expectedShape[0]
                && e.shape.dropFirst() == expectedShape.dropFirst())
        guard fits else {
            throw FormatError(path: path, message: "tensor \"\(name)\" has shape \(e.shape), the model expects \(expectedShape)")
        }
        data.withUnsafeBytes { raw in
            let src = raw.baseAddress! + dataStart + e.range.lowerBound
            UnsafeMutableRawPointer(into).copyMemory(from: src, byteCount: e.range.count)
        }
        release?((dataStart + e.range.lowerBound)..<(dataStart + e.range.upperBound))
    }
}

extension Seq2Seq {
    /// The parameters as safetensors (names as in `parameterSpecs`): the bytes
    /// `writeSafetensors` writes.
    public func safetensorsData(metadata: [String: String] = [:]) throws -> Data {
        try Safetensors.encode(
            params.entries.map { ($0.name, $0.shape, UnsafePointer(params.values.data + $0.offset)) }, metadata: metadata,
            alignment: WeightFile.pageBytes)
    }

    /// Fills the parameters from safetensors data; every tensor must be present with the
    /// shape this configuration gives it.
    /// `release`, when given, is called with each tensor's byte range in `data` once it
    /// has been copied (`MappedFile.release`: a mapped file's pages then stop counting in
    /// the resident set while the next tensors are read).
    public func loadSafetensors(_ data: Data, path: String, release: ((Range<Int>) -> Void)? = nil) throws(Safetensors.FormatError) {
        let (entries, _, start) = try Safetensors.header(data, path: path)
        for e in params.entries {
            try Safetensors.read(
                e.name, expectedShape: e.shape, from: data, entries: entries, dataStart: start, into: params.values.data + e.offset,
                path: path, release: release)
        }
        let extra = Set(entries.keys).subtracting(params.entries.map(\.name))
        if !extra.isEmpty {
            throw Safetensors.FormatError(
                path: path, message: "tensors the model does not have: \(extra.sorted().prefix(5).joined(separator: ", "))")
        }
    }

    /// Writes the parameters as safetensors to `handle`, each tensor on its own pages
    /// (4,096-byte alignment, `Safetensors.write`): with the arena's page layout, the
    /// file's data section is the arena's bytes, so search maps it in place
    /// (`useWeightFiles`) and a fast add writes only the pages its new rows fill
    /// (`writeWeightDelta`).
    public func writeSafetensors(to handle: FileHandle, metadata: [String: String] = [:]) throws {
        try Safetensors.write(
            params.entries.map { ($0.name, $0.shape, UnsafePointer(params.values.data + $0.offset)) }, metadata: metadata, to: handle,
            alignment: WeightFile.pageBytes)
    }

    /// Writes the AdamW state (the bytes of `optimizerData`) to `handle`; moments never
    /// allocated (no step taken) are written as zeros without allocating them.
    public func writeOptimizer(_ opt: AdamW, to handle: FileHandle) throws {
        let moments = params.holdsMoments
        var ts: [(name: String, shape: [Int], data: UnsafePointer<Float>?)] = []
        for e in params.entries {
            ts.append(("m." + e.name, e.shape, moments ? UnsafePointer(params.m.data + e.offset) : nil))
            ts.append(("v." + e.name, e.shape, moments ? UnsafePointer(params.v.data + e.offset) : nil))
        }
        try Safetensors.write(ts, metadata: Self.optimizerMetadata(opt), to: handle)
    }

    static func optimizerMetadata(_ opt: AdamW) -> [String: String] {
        [
            "step": String(opt.step), "beta1": String(opt.beta1), "beta2": String(opt.beta2),
            "eps": String(opt.eps), "weight_decay": String(opt.weightDecay),
        ]
    }

    /// AdamW state (first and second moments, "m.<name>" and "v.<name>", and the step).
    public func optimizerData(_ opt: AdamW) throws -> Data {
        var ts: [(name: String, shape: [Int], data: UnsafePointer<Float>)] = []
        for e in params.entries {
            ts.append(("m." + e.name, e.shape, UnsafePointer(params.m.data + e.offset)))
            ts.append(("v." + e.name, e.shape, UnsafePointer(params.v.data + e.offset)))
        }
        return try Safetensors.encode(
            ts,
            metadata: [
                "step": String(opt.step), "beta1": String(opt.beta1), "beta2": String(opt.beta2),
                "eps": String(opt.eps), "weight_decay": String(opt.weightDecay),
            ])
    }

    /// Restores AdamW moments into the arena and returns the optimizer with its step.
    /// A moment with fewer rows than its parameter is the state from before rows were
    /// added (a fast add keeps the file it had): the added rows' moments are zero, as
    /// growing the model makes them.
    public func loadOptimizer(_ data: Data, path: String, release: ((Range<Int>) -> Void)? = nil) throws(Safetensors.FormatError) -> AdamW {
        let (entries, meta, start) = try Safetensors.header(data, path: path)
        for e in params.entries {
            try Safetensors.read(
                "m." + e.name, expectedShape: e.shape, from: data, entries: entries, dataStart: start, into: params.m.data + e.offset,
                path: path, release: release, fewerRows: true)
            try Safetensors.read(
                "v." + e.name, expectedShape: e.shape, from: data, entries: entries, dataStart: start, into: params.v.data + e.offset,
                path: path, release: release, fewerRows: true)
        }
        return try Self.optimizer(meta, path: path)
    }

    /// The optimizer (step and hyperparameters) from optimizer.safetensors' header alone,
    /// without its moments.
    public static func optimizerHeader(_ data: Data, path: String) throws(Safetensors.FormatError) -> AdamW {
        try optimizer(try Safetensors.header(data, path: path).metadata, path: path)
    }

    static func optimizer(_ meta: [String: String], path: String) throws(Safetensors.FormatError) -> AdamW {
        guard let step = meta["step"].flatMap(Int.init), let b1 = meta["beta1"].flatMap(Float.init),
            let b2 = meta["beta2"].flatMap(Float.init), let eps = meta["eps"].flatMap(Float.init),
            let wd = meta["weight_decay"].flatMap(Float.init)
        else { throw Safetensors.FormatError(path: path, message: "metadata lacks the optimizer's step and hyperparameters") }
        var opt = AdamW(beta1: b1, beta2: b2, eps: eps, weightDecay: wd)
        opt.step = step
        return opt
    }
}
