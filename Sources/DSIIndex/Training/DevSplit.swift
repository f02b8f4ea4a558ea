/// The dev split: the share of a corpus's labelled train queries that `dsi train` holds
/// out for tuning, chosen by FNV-1a of the query id (stable across runs and machines).
/// `dsi eval --split dev` and `dsi bm25 --split dev` read the same queries.
public enum DevSplit {
    public static func contains(_ queryID: String, fraction: Double) -> Bool {
        Double(hash(queryID) % 10_000) < fraction * 10_000
    }

    /// FNV-1a (64-bit) of the id's UTF-8 bytes.
    public static func hash(_ id: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in id.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
