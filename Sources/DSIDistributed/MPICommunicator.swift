import CMPI
import DSIModel
import Foundation

/// An MPI call failed; names the rank, the operation and MPI's message.
public struct MPIError: Error, CustomStringConvertible {
    public let rank: Int
    public let operation: String
    public let message: String
    public var description: String { "MPI rank \(rank): \(operation) failed: \(message)" }
}

/// The processes of one `mpirun` launch (MPI_COMM_WORLD), over Open MPI: the `Collective`
/// that data-parallel training runs on. Calls come from one thread at a time
/// (MPI_THREAD_SERIALIZED); errors are returned (MPI_ERRORS_RETURN) and thrown as
/// `MPIError`, naming the rank.
public final class MPICommunicator: Collective {
    public let rank: Int
    public let size: Int
    let comm: MPI_Comm
    private var finalized = false

    /// Whether this process was started by an MPI launcher (Open MPI's `mpirun` sets
    /// OMPI_COMM_WORLD_SIZE; PMIx launchers set PMIX_RANK).
    public static var launched: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil
    }

    /// Initializes MPI when this process was started by `mpirun`; nil otherwise (a plain
    /// run never touches MPI).
    public static func initializeIfLaunched() throws -> MPICommunicator? {
        guard launched else { return nil }
        return try MPICommunicator()
    }

    init() throws {
        var provided: Int32 = 0
        let rc = MPI_Init_thread(nil, nil, dsi_mpi_thread_serialized(), &provided)
        let rankHint = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"] ?? "") ?? -1
        guard rc == dsi_mpi_success() else {
            throw MPIError(rank: rankHint, operation: "MPI_Init_thread", message: Self.errorString(rc))
        }
        comm = dsi_mpi_comm_world()
        MPI_Comm_set_errhandler(comm, dsi_mpi_errors_return())
        var r: Int32 = 0
        var s: Int32 = 0
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &s)
        rank = Int(r)
        size = Int(s)
        guard provided >= dsi_mpi_thread_serialized() else {
            throw MPIError(rank: rank, operation: "MPI_Init_thread", message: "the MPI library does not support MPI_THREAD_SERIALIZED")
        }
    }

    /// Ends MPI (every rank must call it; after it, no MPI call may be made).
    public func finalize() {
        guard !finalized else { return }
        finalized = true
        MPI_Finalize()
    }

    /// Stops every rank of the launch with exit status `code` (after an error on one rank).
    public func abort(code: Int32) -> Never {
        MPI_Abort(comm, code)
        exit(code)
    }

    static func errorString(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(dsi_mpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &buffer, &length)
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self) + " (error \(code))"
    }

    func check(_ rc: Int32, _ operation: String) throws {
        if rc != dsi_mpi_success() { throw MPIError(rank: rank, operation: operation, message: Self.errorString(rc)) }
    }

    /// MPI counts are 32-bit: large buffers go in chunks.
    static let chunk = 1 << 28

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        try allreduceSum(UnsafeMutableRawPointer(buffer), count: count, stride: MemoryLayout<Float>.stride, type: dsi_mpi_float())
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws {
        try allreduceSum(UnsafeMutableRawPointer(buffer), count: count, stride: MemoryLayout<Double>.stride, type: dsi_mpi_double())
    }

    /// In-place MPI_SUM of `count` elements of `type`, in chunks of at most `chunk`.
    func allreduceSum(_ buffer: UnsafeMutableRawPointer, count: Int, stride: Int, type: MPI_Datatype) throws {
        var done = 0
        while done < count {
            let n = min(Self.chunk, count - done)
            try check(MPI_Allreduce(dsi_mpi_in_place(), buffer + done * stride, Int32(n), type, dsi_mpi_sum(), comm), "MPI_Allreduce")
            done += n
        }
    }

    public func allreduceMinMax(_ value: UInt64) throws -> (min: UInt64, max: UInt64) {
        var lo = value
        var hi = value
        try check(MPI_Allreduce(dsi_mpi_in_place(), &lo, 1, dsi_mpi_uint64(), dsi_mpi_min(), comm), "MPI_Allreduce")
        try check(MPI_Allreduce(dsi_mpi_in_place(), &hi, 1, dsi_mpi_uint64(), dsi_mpi_max(), comm), "MPI_Allreduce")
        return (lo, hi)
    }

    public func allgather(_ values: [Int32]) throws -> [[Int32]] {
        var mine = Int32(values.count)
        var counts = [Int32](repeating: 0, count: size)
        try check(MPI_Allgather(&mine, 1, dsi_mpi_int32(), &counts, 1, dsi_mpi_int32(), comm), "MPI_Allgather")
        var offsets = [Int32](repeating: 0, count: size)
        for i in 1..<max(1, size) { offsets[i] = offsets[i - 1] + counts[i - 1] }
        let total = Int(counts.reduce(0, +))
        var all = [Int32](repeating: 0, count: max(1, total))
        var send = values.isEmpty ? [Int32(0)] : values
        try check(
            MPI_Allgatherv(&send, mine, dsi_mpi_int32(), &all, &counts, &offsets, dsi_mpi_int32(), comm), "MPI_Allgatherv")
        return (0..<size).map { Array(all[Int(offsets[$0])..<Int(offsets[$0] + counts[$0])]) }
    }

    public func broadcast(_ buffer: UnsafeMutablePointer<Double>, count: Int, root: Int) throws {
        try check(MPI_Bcast(buffer, Int32(count), dsi_mpi_double(), Int32(root), comm), "MPI_Bcast")
    }

    /// Waits until every rank has called it.
    public func barrier() throws {
        try check(MPI_Barrier(comm), "MPI_Barrier")
    }
}
