import Foundation

/// The one reader of this project's tab-separated files (qrels, docids.tsv, titles.tsv,
/// replay.tsv): a header line naming the columns, then one row per line. Blank lines are
/// skipped; a wrong header or a row with the wrong number of fields is an error naming
/// the file, the line and what was expected.
public enum TSVReader {
    public struct Row: Sendable, Equatable {
        /// 1-based line number in the file.
        public let line: Int
        public let fields: [String]
    }

    /// Rows of a file, read line by line (never whole).
    /// - Parameter extraColumns: accept rows (and a header) with more fields than `header`.
    public static func rows(file path: String, header: [String], extraColumns: Bool = false) throws(InputError) -> [Row] {
        guard FileManager.default.fileExists(atPath: path) else { throw InputError(file: path, line: 0, "no such file") }
        return try rows(lines: LineReader(path: path), path: path, header: header, extraColumns: extraColumns)
    }

    /// Rows of a text held in memory (a checkpoint's file).
    public static func rows(_ text: String, path: String, header: [String], extraColumns: Bool = false) throws(InputError) -> [Row] {
        // Lines split on the newline byte, a carriage return before it dropped (splitting by
        // characters would see "\r\n" as one character, not a line end).
        let lines = text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated().map { (n, l) -> (Int, String?) in
            (n + 1, String(Substring(l.last == 0x0D ? l.dropLast() : l)))
        }
        return try rows(lines: lines, path: path, header: header, extraColumns: extraColumns)
    }

    static func rows(lines: some Sequence<(Int, String?)>, path: String, header: [String], extraColumns: Bool) throws(InputError) -> [Row] {
        let names = header.joined(separator: ", ")
        let expected = header.joined(separator: "<TAB>")
        var out: [Row] = []
        var sawHeader = false
        for (line, text) in lines {
            guard let text else { throw InputError(file: path, line: line, "not valid UTF-8") }
            // Over the UTF-8 bytes: a tab and a space are single bytes that no other
            // character's encoding contains, and a tab always ends a grapheme, so this is
            // the split by characters, without breaking the text into characters.
            if text.utf8.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let fields = text.utf8.split(separator: 0x09, omittingEmptySubsequences: false).map { String(Substring($0)) }
            let fits = extraColumns ? fields.count >= header.count : fields.count == header.count
            if !sawHeader {
                guard fits, Array(fields.prefix(header.count)) == header else {
                    throw InputError(file: path, line: line, "expected the header \"\(expected)\", found \"\(text.prefix(80))\"")
                }
                sawHeader = true
                continue
            }
            guard fits else {
                throw InputError(
                    file: path, line: line,
                    "expected \(header.count) tab-separated fields (\(names))\(extraColumns ? " or more" : ""), found \(fields.count)")
            }
            out.append(Row(line: line, fields: fields))
        }
        guard sawHeader else { throw InputError(file: path, line: 0, "empty file (expected the header \"\(expected)\" and rows)") }
        return out
    }
}
