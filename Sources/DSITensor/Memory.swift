#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

public enum ProcessMemory {
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
