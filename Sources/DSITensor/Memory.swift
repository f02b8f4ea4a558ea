import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

public enum ProcessMemory {
    /// Resident memory now, in MiB, split as Linux's /proc/self/status does: anonymous
    /// (heap, stacks) and file-backed (mapped files, such as a mapped checkpoint: clean
    /// page-cache pages the kernel can drop). Nil where /proc is not available.
    public static var residentMiB: (anonymous: Double, file: Double)? {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        func kb(_ key: String) -> Double? {
            guard let line = s.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return nil }
            return line.split(separator: " ").compactMap { Double($0) }.first
        }
        guard let anon = kb("RssAnon"), let file = kb("RssFile") else { return nil }
        return (anon / 1024, file / 1024)
    }

    /// Peak resident set size of this process in MiB (getrusage's ru_maxrss).
    public static var peakRSSMiB: Double {
        var usage = rusage()
        #if os(Linux)
            getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        #else
            getrusage(RUSAGE_SELF, &usage)
        #endif
        #if os(Linux)
            return Double(usage.ru_maxrss) / 1024  // KiB on Linux
        #else
            return Double(usage.ru_maxrss) / 1_048_576  // bytes on Darwin
        #endif
    }
}
