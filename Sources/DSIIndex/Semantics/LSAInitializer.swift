import DSIModel
import DSITensor
import DSIText

/// Corpus-derived initialisation (`--init lsa`): the untrained model starts as a
/// bag-of-words retriever.
///
/// - Source token embeddings: the tokens' LSA term vectors times idf, scaled to unit RMS
///   after the model's √d embedding scale.
/// - Residual branches' output projections near zero, except the first decoder layer's
///   cross-attention: its query/key start at zero (uniform attention = mean pooling of
///   the memory) and its value/output projections at the identity, so the decoder's first
///   state is the mean of the query's token vectors.
/// - Output rows of docid tokens that stand for documents: with atomic docids each
///   document's row is its LSA vector; with tree-node tokens each node's row is its
///   documents' centroid and each document's row its own vector (normalised, scaled so
///   the logit is `temperature` × cosine). The untrained model then ranks documents by
///   cosine (atomic), or walks down the k-means tree by cosine to the centroids (nodes).
///   Digit tokens are shared by unrelated documents and keep their random rows. With
///   n-grams each tokenizer token's row is its normalised LSA term vector without the
///   first (mean) dimension.
public enum LSAInitializer {
    public static func apply(_ lsa: LSA, to model: Seq2Seq, vocabulary: TargetVocabulary, temperature: Float) {
        let c = model.config
        let C = c.dModel
        let k = min(lsa.dimensions, C)
        let p = model.params
        // Source embeddings.
        let emb = p.tensor("encoder.embed_tokens.weight")
        emb.zero()
        var sq: Double = 0
        var rows = 0
        for t in Int(Tokenizer.specials.count)..<min(c.sourceVocab, lsa.termVectors.shape[0]) {
            for j in 0..<k { emb[t * C + j] = lsa.termVectors[t * lsa.dimensions + j] * lsa.idf[t] }
            for j in 0..<k { sq += Double(emb[t * C + j] * emb[t * C + j]) }
            rows += 1
        }
        let rms = Float((sq / Double(max(1, rows * C))).squareRoot())
        let scale = rms > 0 ? 1 / (rms * Float(C).squareRoot()) : 1
        for i in 0..<emb.count { emb[i] *= scale }
        // Residual outputs near zero.
        for e in p.entries where e.name.hasSuffix("attn.out.weight") || e.name.hasSuffix("ffn.fc2.weight") {
            let t = p.tensor(e.name)
            for i in 0..<t.count { t[i] *= 0.01 }
        }
        // First decoder layer's cross-attention: mean pooling passed through.
        let q = p.tensor("decoder.layers.0.cross_attn.q.weight")
        let kv = p.tensor("decoder.layers.0.cross_attn.kv.weight")
        let out = p.tensor("decoder.layers.0.cross_attn.out.weight")
        q.zero()
        for i in 0..<(C * C) { kv[i] = 0 }  // key rows
        for i in 0..<C {
            for j in 0..<C { kv[(C + i) * C + j] = i == j ? 1 : 0 }  // value rows
            for j in 0..<C { out[i * C + j] = i == j ? 1 : 0 }
        }
        p.tensor("decoder.embed_tokens.weight").zero()
        // Docid tokens with a document set (atomic documents, tree nodes, and the
        // documents at the end of node paths; a term: the documents whose docid holds
        // it): the normalised mean of their documents' unit LSA vectors, scaled so the
        // logit is `temperature` × cosine against the unit-variance state the final layer
        // norm gives. Shared digits stand for no document set.
        let head = p.tensor("lm_head.weight")
        if vocabulary.scheme == .ngrams {
            // N-grams: token t's output row is its LSA term vector, normalised, without
            // the first dimension (the corpus's mean direction, which dominates every
            // query's state: with it, the tokens of every document would come first), so
            // the untrained model generates n-grams of tokens close to the query's.
            let off = Int(TargetVocabulary.offset)
            let L = lsa.dimensions
            for t in Int(Tokenizer.specials.count)..<min(c.targetVocab - off, lsa.termVectors.shape[0]) {
                var n: Float = 0
                for j in 0..<k { n += lsa.termVectors[t * L + j] * lsa.termVectors[t * L + j] }
                let inv = n > 0 ? temperature / (n * Float(C)).squareRoot() : 0
                for j in 0..<C { head[(off + t) * C + j] = j < k && j > 0 ? lsa.termVectors[t * L + j] * inv : 0 }
            }
            return
        }
        guard vocabulary.scheme == .atomic || vocabulary.scheme == .terms || vocabulary.mode == .nodes else { return }
        let D = lsa.documentVectors.shape[0]
        let L = lsa.dimensions
        var unit = [Float](repeating: 0, count: D * k)
        for d in 0..<D {
            var n: Float = 0
            for j in 0..<k { n += lsa.documentVectors[d * L + j] * lsa.documentVectors[d * L + j] }
            let inv = n > 0 ? 1 / n.squareRoot() : 0
            for j in 0..<k { unit[d * k + j] = lsa.documentVectors[d * L + j] * inv }
        }
        for (i, docs) in vocabulary.members().enumerated() where !docs.isEmpty {
            let row = Int(TargetVocabulary.offset) + i
            var v = [Float](repeating: 0, count: k)
            for d in docs where d < D { for j in 0..<k { v[j] += unit[d * k + j] } }
            let n = v.reduce(0) { $0 + $1 * $1 }
            let inv = n > 0 ? temperature / (n * Float(C)).squareRoot() : 0
            for j in 0..<C { head[row * C + j] = j < k ? v[j] * inv : 0 }
        }
    }
}
