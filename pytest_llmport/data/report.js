// pytest-llmport HTML report: the matrix (filtered, a page of rows at a time) and each cell's side-by-side
// view, rendered from the JSON data island. No library, no network.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("llmport-data").textContent);
  var providers = data.providers, baseline = data.baseline, labels = data.labels, kinds = data.kinds;
  var column = {};
  providers.forEach(function (p, i) { column[p] = i; });
  var PAGE = 100, MAX_EDITS = 2500;
  var rows = [], page = 0, shown = providers, blocks = {};
  function $(id) { return document.getElementById(id); }
  var fProvider = $("f-provider"), fKind = $("f-kind"), fTest = $("f-test");
  var tbody = document.querySelector("#grid tbody"), thead = document.querySelector("#grid thead");
  var dialog = $("detail"), opener = null;

  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function num(value, digits) { return value == null ? "–" : Number(value).toFixed(digits); }
  function label(kind) { return data.kindLabels[kind] || kind; }
  // A matrix cell: [kind index, word, notes?] (or 0 where the provider has no cell).
  function cellAt(i, provider) {
    var c = data.cells[i][column[provider]];
    return c ? { kind: kinds[c[0]], word: c[1], notes: c[2] || [] } : null;
  }
  function changed(cell) { return cell.kind !== "passed" || cell.notes.length > 0; }

  function matches(i) {
    var text = fTest.value.trim().toLowerCase(), kind = fKind.value, provider = fProvider.value;
    if (text && labels[i].toLowerCase().indexOf(text) < 0) return false;
    var cells = provider ? [cellAt(i, provider)] : providers.map(function (p) { return cellAt(i, p); });
    cells = cells.filter(Boolean);
    if (!cells.length) return false;
    if (!kind) return true;
    return cells.some(function (c) { return kind === "changed" ? changed(c) : c.kind === kind; });
  }

  function apply() {
    var provider = fProvider.value;
    shown = provider ? providers.filter(function (p) { return p === baseline || p === provider; }) : providers;
    rows = [];
    for (var i = 0; i < labels.length; i++) if (matches(i)) rows.push(i);
    page = 0;
    render();
  }

  function render() {
    var pages = Math.max(1, Math.ceil(rows.length / PAGE));
    page = Math.min(page, pages - 1);
    thead.innerHTML = "<tr><th scope=col>test</th>" + shown.map(function (p) {
      return "<th scope=col>" + esc(p) + (p === baseline ? " (baseline)" : "") + "</th>";
    }).join("") + "</tr>";
    var html = [];
    var end = Math.min(rows.length, (page + 1) * PAGE);
    for (var i = page * PAGE; i < end; i++) {
      var t = rows[i], name = labels[t];
      html.push("<tr><th scope=row class=test title=\"" + esc(name) + "\">" + esc(name) + "</th>");
      for (var j = 0; j < shown.length; j++) {
        var p = shown[j], cell = cellAt(t, p);
        if (!cell) { html.push("<td>–</td>"); continue; }
        html.push("<td><button type=button class=\"k-" + esc(cell.kind) + "\" data-t=\"" + t + "\" data-p=\"" +
          esc(p) + "\" aria-label=\"" + esc(name + " on " + p + ": " + label(cell.kind) +
          (cell.notes.length ? ", " + cell.notes.join(", ") : "")) + "\">" + esc(cell.word) + "</button></td>");
      }
      html.push("</tr>");
    }
    tbody.innerHTML = html.join("");
    $("status").textContent = rows.length.toLocaleString() + " of " + labels.length.toLocaleString() +
      " tests match" + (rows.length ? "; showing " + (page * PAGE + 1) + "–" + end : "");
    $("page").textContent = "page " + (page + 1) + " of " + pages;
    $("prev").disabled = page === 0;
    $("next").disabled = page >= pages - 1;
  }

  // -- character-level diff (Myers) over grapheme clusters, so Chinese and emoji compare whole --------------
  var segmenter = typeof Intl !== "undefined" && Intl.Segmenter ? new Intl.Segmenter(undefined, { granularity: "grapheme" }) : null;
  function graphemes(text) {
    if (!segmenter) return Array.from(text);
    var out = [];
    var it = segmenter.segment(text)[Symbol.iterator](), step;
    while (!(step = it.next()).done) out.push(step.value.segment);
    return out;
  }
  function myers(a, b) {
    var n = a.length, m = b.length, max = n + m, v = new Int32Array(2 * max + 3), trace = [], d, k, x, y, found = -1;
    for (d = 0; d <= max && d <= MAX_EDITS; d++) {
      trace.push(v.slice(max - d - 1 + 1, max + d + 2 + 1));
      for (k = -d; k <= d; k += 2) {
        if (k === -d || (k !== d && v[max + 1 + k - 1] < v[max + 1 + k + 1])) x = v[max + 1 + k + 1];
        else x = v[max + 1 + k - 1] + 1;
        y = x - k;
        while (x < n && y < m && a[x] === b[y]) { x++; y++; }
        v[max + 1 + k] = x;
        if (x >= n && y >= m) { found = d; break; }
      }
      if (found >= 0) break;
    }
    if (found < 0) return null;
    var ops = [];
    x = n; y = m;
    for (d = found; d >= 0; d--) {
      var snap = trace[d], off = d + 1;
      k = x - y;
      var prevK = (k === -d || (k !== d && snap[off + k - 1] < snap[off + k + 1])) ? k + 1 : k - 1;
      var prevX = d === 0 ? 0 : snap[off + prevK], prevY = prevX - prevK;
      while (x > prevX && y > prevY) { ops.push([0, a[x - 1]]); x--; y--; }
      if (d > 0) {
        if (x === prevX) { ops.push([1, b[y - 1]]); y--; } else { ops.push([-1, a[x - 1]]); x--; }
      }
    }
    while (x > 0 && y > 0) { ops.push([0, a[x - 1]]); x--; y--; }
    return ops.reverse();
  }
  function diff(left, right) {
    var a = graphemes(left), b = graphemes(right), start = 0, ea = a.length, eb = b.length;
    while (start < ea && start < eb && a[start] === b[start]) start++;
    while (ea > start && eb > start && a[ea - 1] === b[eb - 1]) { ea--; eb--; }
    var middle = myers(a.slice(start, ea), b.slice(start, eb));
    if (middle === null) return null;
    var ops = [];
    for (var i = 0; i < start; i++) ops.push([0, a[i]]);
    ops = ops.concat(middle);
    for (i = ea; i < a.length; i++) ops.push([0, a[i]]);
    return ops;
  }
  function panes(left, right) {
    var ops = diff(left, right);
    if (ops === null) return [esc(left), esc(right), true];
    var l = [], r = [], run = null, text = "";
    function flush() {
      if (run === null) return;
      var t = esc(text);
      if (run === 0) { l.push(t); r.push(t); } else if (run < 0) l.push("<del>" + t + "</del>"); else r.push("<ins>" + t + "</ins>");
    }
    ops.forEach(function (op) {
      if (op[0] !== run) { flush(); run = op[0]; text = ""; }
      text += op[1];
    });
    flush();
    return [l.join(""), r.join(""), false];
  }
  window.llmportDiff = diff;

  function asText(value) {
    if (value === undefined) return "";
    return typeof value === "string" ? value : JSON.stringify(value, null, 2);
  }
  function sideBySide(title, left, right, leftName, rightName) {
    var p = panes(left, right);
    return "<h4>" + esc(title) + (p[2] ? " (too different for a character diff)" : "") + "</h4><div class=sbs>" +
      "<pre aria-label=\"" + esc(leftName) + "\">" + p[0] + "</pre><pre aria-label=\"" + esc(rightName) + "\">" + p[1] +
      "</pre></div>";
  }
  function checksTable(cell) {
    var checks = cell.checks || [];
    if (!checks.length) return "<p>No llm_equiv checks.</p>";
    return "<table><caption class=sr>Checks</caption><thead><tr><th>check</th><th>key</th><th>result</th><th>score</th>" +
      "<th>threshold</th><th>metric</th><th>detail</th></tr></thead><tbody>" + checks.map(function (c) {
        var detail = [c.detail, c.finding].filter(Boolean).join("; ");
        var diffs = (c.diff || []).map(function (line) { return "<br><code>" + esc(line) + "</code>"; }).join("");
        return "<tr><td>" + esc(c.kind) + "</td><td>" + esc(c.key || "") + "</td><td class=" + (c.passed ? "pass>passed" : "fail>failed") +
          "</td><td>" + num(c.score, 3) + "</td><td>" + num(c.threshold, 3) + "</td><td>" + esc(c.metric || "") + "</td><td>" +
          esc(detail) + diffs + "</td></tr>";
      }).join("") + "</tbody></table>";
  }
  function cost(e) {
    if (!e.cost) return "–";
    if (e.cost.unknown) return "unknown (" + esc(e.cost.unknown) + ")";
    return "$" + Number(e.cost.usd).toFixed(6) + " / ¥" + Number(e.cost.cny).toFixed(6);
  }
  function exchangesTable(name, cell) {
    var ex = cell.exchanges || [];
    if (!ex.length) return "<p>" + esc(name) + ": no exchange recorded.</p>";
    return "<table><caption>" + esc(name) + ": exchanges</caption><thead><tr><th>#</th><th>endpoint</th><th>status</th>" +
      "<th>model asked</th><th>model served</th><th>finish (raw)</th><th>tokens in/out/cached</th><th>first token</th>" +
      "<th>total</th><th>cost</th><th>error</th><th>features</th></tr></thead><tbody>" + ex.map(function (e, i) {
        var u = e.usage || {};
        return "<tr><td>" + (i + 1) + "</td><td>" + esc(e.endpoint || "") + "</td><td>" + esc(e.status) + "</td><td>" +
          esc(e.request_model || "–") + "</td><td>" + esc(e.response_model || "–") + "</td><td>" + esc(e.finish_reason) +
          " (" + esc(e.finish_reason_raw == null ? "–" : e.finish_reason_raw) + ")</td><td>" + (u.prompt == null ? "–" : u.prompt) +
          " / " + (u.completion == null ? "–" : u.completion) + " / " + (u.cached || 0) + "</td><td>" + num(e.first_byte_ms, 1) +
          " ms</td><td>" + num(e.total_ms, 1) + " ms</td><td>" + cost(e) + "</td><td>" +
          esc(e.error ? e.error.category + (e.error.code ? " (" + e.error.code + ")" : "") : e.content_filtered ? "content_filter" : "–") +
          "</td><td>" + esc((e.features || []).join(", ")) + "</td></tr>";
      }).join("") + "</tbody></table>";
  }

  // The detail of a chunk of tests: gzip + base64 in its own script element, unpacked on first use.
  function block(t) {
    var n = Math.floor(t / data.chunk);
    if (!blocks[n]) {
      var text = atob(document.getElementById("detail-" + n).textContent);
      var bytes = new Uint8Array(text.length);
      for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
      var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      blocks[n] = new Response(stream).text().then(JSON.parse);
    }
    return blocks[n];
  }

  function open(t, provider, button) {
    var name = labels[t], notes = cellAt(t, provider).notes;
    opener = button;
    return block(t).then(function (tests) { detail(name, tests[name], provider, notes); });
  }

  function detail(name, row, provider, notes) {
    var cell = row[provider], base = row[baseline];
    var other = provider === baseline ? null : base;
    $("detail-h").textContent = name + " — " + provider + (other ? " vs " + baseline : provider === baseline ? " (baseline)" : "");
    var html = ["<p>Kind: <strong class=\"k-" + esc(cell.kind) + "\">" + esc(label(cell.kind)) + "</strong>" +
      (notes.length ? " · notes: " + esc(notes.join(", ")) : "") +
      (cell.exception ? " · " + esc(cell.exception) : "") + (cell.category ? " · category " + esc(cell.category) : "") + "</p>"];
    if (!other && provider !== baseline) html.push("<p class=warn>The baseline " + esc(baseline) + " has no cell for this test.</p>");
    var leftName = baseline + " (baseline)", rightName = provider;
    if (other) {
      var keys = Object.keys(other.observations || {}).concat(Object.keys(cell.observations || {}));
      keys = keys.filter(function (k, i) { return keys.indexOf(k) === i; });
      html.push("<h3>Outputs side by side</h3><p class=sr>Left: " + esc(leftName) + ", right: " + esc(rightName) +
        ". Deleted text is what only the baseline said, inserted text what only " + esc(provider) + " said.</p>");
      keys.forEach(function (k) {
        html.push(sideBySide("observation " + k, asText((other.observations || {})[k]), asText((cell.observations || {})[k]), leftName, rightName));
      });
      var n = Math.max((other.exchanges || []).length, (cell.exchanges || []).length);
      for (var i = 0; i < n; i++) {
        var a = (other.exchanges || [])[i] || {}, b = (cell.exchanges || [])[i] || {};
        html.push(sideBySide("answer " + (i + 1), a.text || "", b.text || "", leftName, rightName));
      }
    } else {
      Object.keys(cell.observations || {}).forEach(function (k) {
        html.push("<h4>observation " + esc(k) + "</h4><div class=sbs><pre>" + esc(asText(cell.observations[k])) + "</pre></div>");
      });
    }
    html.push("<h3>Scores and thresholds</h3>" + checksTable(cell));
    html.push("<h3>Exchanges</h3>" + (other ? exchangesTable(leftName, other) : "") + exchangesTable(rightName, cell));
    if (cell.problems && cell.problems.length) html.push("<h3>Problems</h3><pre>" + esc(cell.problems.join("\n")) + "</pre>");
    if (cell.longrepr) html.push("<details><summary>Failure text</summary><pre>" + esc(cell.longrepr) + "</pre></details>");
    $("detail-body").innerHTML = html.join("");
    dialog.showModal();
    $("close").focus();
  }

  tbody.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-t]");
    if (button) open(Number(button.getAttribute("data-t")), button.getAttribute("data-p"), button);
  });
  $("close").addEventListener("click", function () { dialog.close(); });
  dialog.addEventListener("close", function () { if (opener) opener.focus(); });
  $("filters").addEventListener("submit", function (event) { event.preventDefault(); });
  [fProvider, fKind].forEach(function (el) { el.addEventListener("change", apply); });
  var timer = null;
  fTest.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(apply, 120); });
  $("prev").addEventListener("click", function () { page--; render(); });
  $("next").addEventListener("click", function () { page++; render(); });
  document.querySelectorAll("a[data-kind]").forEach(function (a) {
    a.addEventListener("click", function () {
      fProvider.value = a.getAttribute("data-provider");
      fKind.value = a.getAttribute("data-kind");
      apply();
    });
  });
  apply();
  document.documentElement.setAttribute("data-ready", String(performance.now()));
})();
