import DSIIndex
import Foundation
import Hummingbird

/// The search page (`GET /`): server-rendered HTML with no external assets: a query box,
/// ranked results with titles and scores, the index's size and generations, the
/// training curve, and a form to add a document (`POST /`).
enum Page {
    static func render(service: IndexService, query: String?, limits: ServerLimits, message: (ok: Bool, text: String)? = nil) async
        -> Response
    {
        let stats = service.stats
        let snap = service.snapshot
        var results = ""
        var q = query ?? ""
        if let query, !query.trimmingCharacters(in: .whitespaces).isEmpty {
            q = String(query.prefix(limits.maxQueryCharacters))
            do {
                let r = try await service.search(q, k: 10, beam: 10)
                let rows = r.results.map { row in
                    "<tr><td class=n>\(row.rank)</td><td><span class=t>\(escape(row.title.isEmpty ? "(no title)" : row.title))</span><br><span class=id>\(escape(row.id)) · docid \(escape(row.docid))</span></td><td class=n>\(String(format: "%.3f", row.score))</td></tr>"
                }
                results =
                    rows.isEmpty
                    ? "<p>No results.</p>"
                    : "<table class=results><tr><th>#</th><th>document</th><th>score (log-prob.)</th></tr>\(rows.joined())</table>"
            } catch {
                results = "<p class=err>\(escape("\(error)"))</p>"
            }
        }
        let note = message.map { "<p class=\($0.ok ? "ok" : "err")>\(escape($0.text))</p>" } ?? ""
        let curve =
            snap.index.evaluations.isEmpty ? "" : "<h2>Training</h2>" + LearningCurve.svg(snap.index.evaluations, width: 560, height: 220)
        let html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>swift-dsi</title>
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <style>
            body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#222}
            h1{font-size:1.4em;margin-bottom:.2em} h2{font-size:1.1em;margin-top:1.6em}
            .meta{color:#666;font-size:.9em} input[type=text],textarea{width:100%;box-sizing:border-box;font:inherit;padding:.4em}
            input[name=q]{font-size:1.1em} button{font:inherit;padding:.35em 1.2em;margin-top:.4em}
            table.results{border-collapse:collapse;width:100%;margin-top:1em} td,th{padding:.35em .5em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
            td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums} .t{font-weight:600} .id{color:#777;font-size:.85em}
            .ok{color:#176117;background:#eef8ee;padding:.5em} .err{color:#9b1c1c;background:#fdf0f0;padding:.5em}
            </style></head><body>
            <h1>swift-dsi</h1>
            <p class=meta>\(stats.documents) documents in \(stats.generations) generation\(stats.generations == 1 ? "" : "s") · \(stats.pendingDocuments) added since the checkpoint · step \(stats.step) · checkpoint \(escape(stats.checkpoint))</p>
            <form method=get action="/"><input type=text name=q value="\(escape(q))" placeholder="Search the index" autofocus>
            <button type=submit>Search</button></form>
            \(note)\(results)
            \(curve)
            <h2>Add a document</h2>
            \(service.acceptsDocuments ? "" : "<p class=err>This checkpoint's docids are shared digit tokens: documents cannot be added online.</p>")
            <form method=post action="/">
            <label>id<input type=text name=id required></label>
            <label>title<input type=text name=title></label>
            <label>text<textarea name=text rows=4 required></textarea></label>
            <button type=submit>Add</button></form>
            </body></html>
            """
        return Response(
            status: message.map { $0.ok ? .ok : .badRequest } ?? .ok, headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
