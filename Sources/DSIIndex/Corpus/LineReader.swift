import Foundation

/// Reads a file line by line in chunks (never the whole file at once), splitting on
/// "\n" (a trailing "\r" is dropped) and decoding each line as UTF-8.
public struct LineReader: Sequence {
    public let path: String

    public init(path: String) { self.path = path }

    public func makeIterator() -> Iterator { Iterator(path: path) }

    public struct Iterator: IteratorProtocol {
        let handle: FileHandle?
        let path: String
        var buffer = Data()
        var atEOF = false
        var lineNumber = 0

        init(path: String) {
            self.path = path
            handle = FileHandle(forReadingAtPath: path)
        }

        /// (line number, text); text is nil when the line is not valid UTF-8.
        public mutating func next() -> (Int, String?)? {
            guard let handle else { return nil }
            while true {
                if let nl = buffer.firstIndex(of: 0x0A) {
                    var line = buffer[buffer.startIndex..<nl]
                    buffer.removeSubrange(buffer.startIndex...nl)
                    if line.last == 0x0D { line = line.dropLast() }
                    lineNumber += 1
                    return (lineNumber, String(data: line, encoding: .utf8))
                }
                if atEOF {
                    if buffer.isEmpty { return nil }
                    let line = buffer
                    buffer = Data()
                    lineNumber += 1
                    return (lineNumber, String(data: line, encoding: .utf8))
                }
                let chunk = handle.readData(ofLength: 1 << 20)
                if chunk.isEmpty { atEOF = true } else { buffer.append(chunk) }
            }
        }
    }
}
