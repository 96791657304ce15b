/* ALOE bench report. Draws the page from the JSON block #aloe-data.
   Every piece of run data is model output or comes from a file a model wrote: it is only ever put
   on the page as text (textContent, createTextNode, attribute values), never parsed as markup. */
(function () {
  "use strict";

  var DATA;
  var COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"];
  var SEVERE = /^(judge-|embedded-judge)/;
  var SVGNS = "http://www.w3.org/2000/svg";

  // ---- small helpers -------------------------------------------------------------------------

  function h(tag, attrs) {
    var el = document.createElement(tag);
    var a = attrs || {};
    Object.keys(a).forEach(function (k) {
      var v = a[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") el.textContent = String(v);
      else if (k === "cls") el.className = v;
      else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
      else if (k === "style") el.setAttribute("style", v);
      else el.setAttribute(k, v === true ? "" : String(v));
    });
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }

  function add(el, child) {
    if (child === null || child === undefined || child === false) return el;
    if (Array.isArray(child)) { child.forEach(function (c) { add(el, c); }); return el; }
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    return el;
  }

  function svg(tag, attrs) {
    var el = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") el.textContent = String(attrs[k]);
      else el.setAttribute(k, String(attrs[k]));
    });
    return el;
  }

  function isNum(x) { return typeof x === "number" && isFinite(x); }

  function fmt(x, d) {
    if (!isNum(x)) return "–";
    if (d === undefined) d = Number.isInteger(x) ? 0 : 3;
    return x.toFixed(d);
  }

  function signed(x, d) { return isNum(x) ? (x > 0 ? "+" : "") + x.toFixed(d === undefined ? 3 : d) : "–"; }

  function fmtCi(ci, d, sign) {
    if (!Array.isArray(ci) || !isNum(ci[0]) || !isNum(ci[1])) return "";
    var f = sign ? signed : fmt;
    return "[" + f(ci[0], d) + ", " + f(ci[1], d) + "]";
  }

  function fmtP(p) { return isNum(p) ? (p < 0.001 ? "< 0.001" : p.toFixed(3)) : "–"; }

  function scoreText(s) { return isNum(s) ? (Number.isInteger(s) ? String(s) : s.toFixed(2)) : "–"; }

  // 1 (red) .. 5 (green); a mean in between takes the nearest step.
  var HEAT = ["#d73027", "#fc8d59", "#fee08b", "#91cf60", "#1a9850"];
  function heatColor(s) {
    if (!isNum(s)) return null;
    var i = Math.max(0, Math.min(4, Math.round(s) - 1));
    return HEAT[i];
  }

  function scoreBadge(s) {
    var el = h("span", { cls: "score" + (isNum(s) ? "" : " s-null"), text: scoreText(s), title: isNum(s) ? "score " + scoreText(s) : "no valid score" });
    if (isNum(s)) el.style.background = heatColor(s);
    return el;
  }

  function heatRow(scores, label) {
    var row = h("span", { cls: "heat" });
    (scores || []).forEach(function (s, k) {
      var cell = h("span", { cls: isNum(s) ? "" : "s-null", text: isNum(s) ? scoreText(s).slice(0, 3) : "·", title: (label ? label + ", " : "") + "turn " + (k + 1) + ": " + scoreText(s) });
      if (isNum(s)) cell.style.background = heatColor(s);
      row.appendChild(cell);
    });
    return row;
  }

  function statusBadge(st) { return h("span", { cls: "badge " + String(st), text: String(st) }); }

  function card(title, id) {
    var sec = h("section", { cls: "card", id: id || null });
    if (title) sec.appendChild(h("h2", { text: title }));
    return sec;
  }

  // A card whose body folds away: for what a reader looks up, not what they read first.
  function foldCard(title, id, open) {
    var sec = h("section", { cls: "card fold", id: id || null });
    var det = h("details", { open: open ? true : null }, h("summary", { cls: "fold-title", text: title }));
    sec.appendChild(det);
    sec.body = det;
    return sec;
  }

  function kv(k, v) { return h("div", { cls: "kv" }, h("span", { cls: "k", text: k }), h("span", { cls: "v", text: v })); }

  function summary(text, n) {
    var s = String(text || "");
    return s.length > n ? s.slice(0, n - 1) + "…" : s;
  }

  function mean(xs) {
    var v = (xs || []).filter(isNum);
    return v.length ? v.reduce(function (a, b) { return a + b; }, 0) / v.length : null;
  }

  function turnScores(conv) { return (conv.turns || []).map(function (t) { return isNum(t.score) ? t.score : null; }); }

  function roleSpec(r) { return r && r.spec ? String(r.spec) : "–"; }

  function roleText(r) {
    if (!r) return "–";
    var bits = [roleSpec(r)];
    var args = r.args && Object.keys(r.args).length ? Object.keys(r.args).map(function (k) { return k + "=" + r.args[k]; }).join(",") : "";
    if (args) bits.push("(" + args + ")");
    var gen = [];
    if (r.max_new_tokens !== null && r.max_new_tokens !== undefined) gen.push("max " + r.max_new_tokens + " tok");
    if (r.temperature !== null && r.temperature !== undefined) gen.push("T=" + r.temperature);
    if (r.top_p !== null && r.top_p !== undefined) gen.push("top-p " + r.top_p);
    if (r.system_role) gen.push("system role: " + r.system_role);
    if (gen.length) bits.push("· " + gen.join(", "));
    return bits.join(" ");
  }

  function runColor(i) { return COLORS[i % COLORS.length]; }

  // ---- generic rendering of sections whose exact fields other tools decide ----------------------

  function isScalar(v) { return v === null || ["string", "number", "boolean"].indexOf(typeof v) >= 0; }

  function scalarText(v, key) {
    if (v === null || v === undefined) return "–";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(3);
    return String(v);
  }

  function generic(v, depth, key) {
    depth = depth || 0;
    if (isScalar(v)) return document.createTextNode(scalarText(v, key));
    if (depth > 4) return h("pre", { cls: "raw", text: JSON.stringify(v, null, 1) });
    if (Array.isArray(v)) {
      if (v.every(isScalar)) {
        if (v.length === 2 && v.every(isNum) && /ci|interval|band/i.test(key || "")) return document.createTextNode(fmtCi(v, 3));
        return document.createTextNode(v.map(function (x) { return scalarText(x); }).join(", "));
      }
      if (v.every(function (x) { return x && typeof x === "object" && !Array.isArray(x); })) return objectRowsTable(v, depth);
      return h("div", {}, v.map(function (x) { return h("div", {}, generic(x, depth + 1, key)); }));
    }
    var keys = Object.keys(v);
    var nested = keys.length > 0 && keys.every(function (k) { return v[k] && typeof v[k] === "object" && !Array.isArray(v[k]); });
    if (nested && depth < 3) {
      return objectRowsTable(keys.map(function (k) { return Object.assign({ "": k }, v[k]); }), depth);
    }
    var t = h("table", { cls: "generic kvtable" });
    keys.forEach(function (k) { t.appendChild(h("tr", {}, h("th", { text: k }), h("td", {}, generic(v[k], depth + 1, k)))); });
    return h("div", { cls: "scroll" }, t);
  }

  function objectRowsTable(rows, depth) {
    var cols = [];
    rows.forEach(function (r) { Object.keys(r).forEach(function (k) { if (cols.indexOf(k) < 0) cols.push(k); }); });
    var t = h("table", { cls: "generic" });
    t.appendChild(h("tr", {}, cols.map(function (c) { return h("th", { text: c }); })));
    rows.forEach(function (r) {
      t.appendChild(h("tr", {}, cols.map(function (c) {
        var v = r[c];
        return h("td", { cls: typeof v === "number" ? "num" : null }, v === undefined ? "" : generic(v, depth + 1, c));
      })));
    });
    return h("div", { cls: "scroll" }, t);
  }

  // ---- header, warnings, metrics ----------------------------------------------------------------

  // What a run is, from the generic fields alone (no task is named here): a curve of one point is a
  // one-reply task; what one item is called, the task's title and its headline figure come with the
  // run (`task`: what the run's task definition says of itself).
  function oneTurn(run) { return ((run.metrics || {}).al || []).length <= 1; }
  function itemWord(run) { return (run.task || {}).item || "item"; }
  function cap(s) { s = String(s || ""); return s.charAt(0).toUpperCase() + s.slice(1); }
  function headline(run) { return (run.task || {}).headline || { label: "AVG", key: "avg" }; }
  function humanize(key) { return cap(String(key).replace(/_/g, " ")); }

  function pageHeader() {
    var runs = DATA.runs;
    var title = runs.length === 1 ? runs[0].label : runs.map(function (r) { return r.label; }).join("  vs  ");
    var kind = DATA.title || DATA.kind || "aloe-bench";
    return h("header", { cls: "top" },
      h("h1", { text: (runs.length === 1 ? "" : "Comparison: ") + title }),
      h("div", { cls: "sub", text: kind + " · " + runs.length + " run" + (runs.length > 1 ? "s" : "") + " · aloe-bench report" }));
  }

  function warningsBlock() {
    var box = h("div", { cls: "warnings", id: "warnings" });
    var multi = DATA.runs.length > 1;
    DATA.runs.forEach(function (run) {
      var prefix = multi ? run.label + ": " : "";
      (run.warnings || []).forEach(function (w) {
        var code = String(w.code || "warning");
        box.appendChild(h("div", { cls: "warning" + (SEVERE.test(code) ? " severe" : ""), "data-code": code },
          h("code", { text: code }), prefix + String(w.message || "")));
      });
      var failed = (run.failures || []).length || (run.metrics && run.metrics.failed) || 0;
      if (failed) box.appendChild(h("div", { cls: "warning severe", "data-code": "failed" }, h("code", { text: "failed" }),
        prefix + failed + " conversation(s) failed and are left out of every metric (reasons under Failures)."));
      if (run.status && run.status !== "complete") box.appendChild(h("div", { cls: "warning", "data-code": "status" }, h("code", { text: "status" }),
        prefix + "run status is '" + run.status + "': the figures cover what had finished when the files were written."));
    });
    (DATA.compare_notes || []).forEach(function (n) {
      box.appendChild(h("div", { cls: "warning severe", "data-code": "setup" }, h("code", { text: "setup" }), String(n)));
    });
    return box.childNodes.length ? box : null;
  }

  function runInfo(run, withTitle) {
    var hd = run.header || {};
    var sec = card(withTitle ? "Run: " + run.label : "Run");
    var personas = hd.personas || {};
    var g = h("div", { cls: "grid" });
    var noUser = !hd.simulator;  // no simulated user: the items are given, not talked to
    var items = [
      ["model", roleText(hd.model)],
      noUser ? null : ["simulated user", roleText(hd.simulator)],
      [hd.judges ? "judges" : "judge", Array.isArray(hd.judges) ? hd.judges.map(function (j) { return typeof j === "string" ? j : roleText(j); }).join(", ") : roleText(hd.judge)],
      ["protocol", hd.protocol],
      [noUser ? "data" : "persona set", (personas.set || "?") + (personas.count !== undefined ? " (" + personas.count + ")" : "")],
      noUser ? null : ["turns", hd.turns],
      ["seed", hd.seed],
      hd.disclosure && hd.disclosure !== "hidden" ? ["persona disclosure", hd.disclosure] : null,
      hd.judge_reasks !== undefined && hd.judge_reasks !== null ? ["judge re-asks", hd.judge_reasks] : null,
      hd.judge_repeats ? ["judge repeats", hd.judge_repeats] : null,
      ["task", hd.task || "–"],
      ["status", run.status],
      ["failures", (run.failures || []).length],
      hd.rejudged_from ? ["rejudged from", typeof hd.rejudged_from === "string" ? hd.rejudged_from : JSON.stringify(hd.rejudged_from)] : null,
      ["started", hd.started || "–"],
      ["elapsed", isNum(hd.elapsed_s) ? hd.elapsed_s.toFixed(0) + " s" : "–"],
      ["directory", run.path]
    ];
    items.forEach(function (it) { if (it) g.appendChild(kv(it[0], it[1] === undefined || it[1] === null ? "–" : String(it[1]))); });
    sec.appendChild(g);
    var prompts = Object.keys(hd.prompts || {}).map(function (k) { return k + " v" + hd.prompts[k].version + " (" + hd.prompts[k].sha256 + ")"; });
    var pk = hd.packages || {};
    var versions = ["aloe-bench", "python", "torch", "transformers", "openai", "vllm", "lm-eval"].filter(function (k) { return pk[k]; })
      .map(function (k) { return k + " " + pk[k]; });
    if (prompts.length) sec.appendChild(h("p", { cls: "note", text: "prompts: " + prompts.join("; ") }));
    if (versions.length) sec.appendChild(h("p", { cls: "note", text: "versions: " + versions.join(", ") }));
    if ((run.failures || []).length) {
      sec.appendChild(h("h3", { text: "Failures" }));
      sec.appendChild(objectRowsTable(run.failures, 1));
    }
    return sec;
  }

  function stat(name, value, ci, note, id) {
    return h("div", { cls: "stat", id: id || null }, h("div", { cls: "name", text: name }), h("div", { cls: "value", text: value }),
      h("div", { cls: "ci", text: ci ? "95% CI " + ci : "no interval" }), note ? h("div", { cls: "ci", text: note }) : null);
  }

  function metricsCard(run, withTitle) {
    var m = run.metrics || {};
    var ci = m.ci || {};
    var sec = card((withTitle ? run.label + ": " : "") + "Scores");
    var nConv = m.conversations;
    var boot = (ci.n_bootstrap || "?") + " bootstrap resamples over conversations";
    if (oneTurn(run)) {  // one reply per item: the headline figure, then every breakdown the metrics hold
      var hl = headline(run), word = itemWord(run);
      var stats = h("div", { cls: "stats" });
      stats.appendChild(stat(hl.label + " (mean over " + word + "s)", fmt(hl.value, 3), fmtCi(hl.interval, 3), "n = " + ((m.n || [])[0] || 0) + " scored of " + (isNum(hl.n) ? hl.n : nConv) + " " + word + "s", "stat-score"));
      sec.appendChild(stats);
      sec.appendChild(h("p", { cls: "note", text: "Interval: " + boot + ". " + ((m.invalid || [])[0] || 0) + " " + word + "(s) without a score." }));
      Object.keys(m).forEach(function (key) {
        var v = m[key];
        if (["ci", "notes", "values"].indexOf(key) >= 0 || !v || typeof v !== "object" || Array.isArray(v) || !Object.keys(v).length) return;
        var nested = Object.keys(v).every(function (k) { return v[k] && typeof v[k] === "object"; });
        sec.appendChild(h("h3", { text: humanize(key) }));
        sec.appendChild(generic(v, nested ? 0 : 1));
      });
      return sec;
    }
    var s = h("div", { cls: "stats" });
    var nNote = "n = " + (nConv === undefined ? "?" : nConv) + " conversations";
    s.appendChild(stat("AVG (mean of AL(k))", fmt(m.avg, 3), fmtCi(ci.avg, 3), nNote, "stat-avg"));
    s.appendChild(stat("IR (slope per turn)", signed(m.ir, 4), fmtCi(ci.ir, 4, true), nNote, "stat-ir"));
    s.appendChild(stat("N-IR", signed(m.n_ir, 4), fmtCi(ci.n_ir, 4, true), ci.normalized_by_viewer ? "interval computed by the viewer" : nNote, "stat-nir"));
    s.appendChild(stat("N-R²", fmt(m.n_r2, 4), fmtCi(ci.n_r2, 4), ci.normalized_by_viewer ? "interval computed by the viewer" : nNote, "stat-nr2"));
    sec.appendChild(s);
    var notes = "Intervals: " + boot + (ci.level ? " (" + Math.round(ci.level * 100) + "%)" : "") + ".";
    if (ci.normalized_by_viewer) notes += " N-IR and N-R² intervals are not recorded by the run: the viewer computed them with the same resampling (resamples with a flat curve have none and are left out).";
    if (isNum(nConv) && nConv < 30) notes += " Only " + nConv + " conversations: intervals are wide and a difference of a few tenths can be noise.";
    sec.appendChild(h("p", { cls: "note", text: notes }));
    var t = h("table", { id: "al-table" }, h("tr", {}, h("th", { cls: "num", text: "turn" }), h("th", { cls: "num", text: "AL(k)" }), h("th", { text: "95% CI" }),
      h("th", { cls: "num", text: "n" }), h("th", { cls: "num", text: "invalid" }), h("th", { cls: "num", text: "N-AL(k)" })));
    (m.al || []).forEach(function (al, k) {
      t.appendChild(h("tr", {}, h("td", { cls: "num", text: k + 1 }), h("td", { cls: "num", text: fmt(al, 3) }), h("td", { text: fmtCi((ci.al || [])[k], 3) }),
        h("td", { cls: "num", text: (m.n || [])[k] }), h("td", { cls: "num", text: (m.invalid || [])[k] }), h("td", { cls: "num", text: fmt((m.n_al || [])[k], 3) })));
    });
    sec.appendChild(h("details", {}, h("summary", { text: "per-turn table" }), h("div", { cls: "scroll" }, t)));
    return sec;
  }

  // ---- the AL(k) curve ---------------------------------------------------------------------------

  function curveCard() {
    var runs = DATA.runs;
    var sec = card(runs.length > 1 ? "AL(k) per turn, overlaid" : "AL(k) per turn", "curve");
    var W = 720, H = 340, L = 50, R = 16, T = 14, B = 42;
    var K = Math.max.apply(null, runs.map(function (r) { return ((r.metrics || {}).al || []).length; }).concat([1]));
    var x = function (k) { return K === 1 ? L + (W - L - R) / 2 : L + (k - 1) * (W - L - R) / (K - 1); };
    var y = function (s) { return T + (5 - s) * (H - T - B) / 4; };
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, cls: "curve", role: "img", "aria-label": "AL(k) per turn with 95% bands" });
    root.setAttribute("class", "curve");
    for (var s = 1; s <= 5; s++) {
      root.appendChild(svg("line", { x1: L, x2: W - R, y1: y(s), y2: y(s), stroke: "#e3e6ea" }));
      root.appendChild(svg("text", { x: L - 8, y: y(s) + 4, "text-anchor": "end", text: s }));
    }
    for (var k = 1; k <= K; k++) root.appendChild(svg("text", { x: x(k), y: H - B + 18, "text-anchor": "middle", text: k }));
    root.appendChild(svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", text: "turn k" }));
    root.appendChild(svg("text", { x: 14, y: (T + H - B) / 2, "text-anchor": "middle", transform: "rotate(-90 14 " + (T + H - B) / 2 + ")", text: "AL(k), judge score 1–5" }));
    var legend = h("div", { cls: "legend" });
    runs.forEach(function (run, i) {
      var m = run.metrics || {};
      var al = m.al || [];
      var band = (m.ci || {}).al || [];
      var color = runColor(i);
      // The band: upper bounds left to right, then lower bounds back, over turns that have both.
      var upper = [], lower = [];
      al.forEach(function (v, k) { var b = band[k]; if (Array.isArray(b) && isNum(b[0]) && isNum(b[1])) { upper.push([x(k + 1), y(b[1])]); lower.unshift([x(k + 1), y(b[0])]); } });
      if (upper.length > 1) {
        root.appendChild(svg("path", { "class": "band", d: "M" + upper.concat(lower).map(function (p) { return p[0].toFixed(1) + "," + p[1].toFixed(1); }).join("L") + "Z", fill: color, "fill-opacity": 0.14, stroke: "none" }));
      } else if (upper.length === 1) {
        root.appendChild(svg("line", { x1: upper[0][0], x2: upper[0][0], y1: upper[0][1], y2: lower[0][1], stroke: color, "stroke-width": 6, "stroke-opacity": 0.25 }));
      }
      var pts = [];
      al.forEach(function (v, k) { if (isNum(v)) pts.push([x(k + 1), y(v), k, v]); });
      if (pts.length) {
        root.appendChild(svg("path", { "class": "line", "data-run": i, d: "M" + pts.map(function (p) { return p[0].toFixed(1) + "," + p[1].toFixed(1); }).join("L"), fill: "none", stroke: color, "stroke-width": 2.2 }));
      }
      pts.forEach(function (p) {
        var c = svg("circle", { "class": "pt", cx: p[0].toFixed(1), cy: p[1].toFixed(1), r: 4, fill: color });
        c.appendChild(svg("title", { text: run.label + " · turn " + (p[2] + 1) + ": AL = " + fmt(p[3], 3) + " " + fmtCi(band[p[2]], 3) + ", n = " + ((m.n || [])[p[2]]) }));
        root.appendChild(c);
      });
      legend.appendChild(h("span", {}, h("span", { cls: "sw", style: "background:" + color }), run.label + " (n = " + (m.conversations === undefined ? "?" : m.conversations) + ")"));
    });
    sec.appendChild(root);
    sec.appendChild(legend);
    sec.appendChild(h("p", { cls: "note", text: "Shaded: 95% bootstrap band of AL(k) over conversations (each run's own). Hover a point for its value, interval and n." }));
    return sec;
  }

  // ---- sections other tools add (reliability, validity, audit, training, ...) ------------------------

  function sectionsCards(run, withTitle) {
    var out = [];
    var names = { reliability: "Judge reliability", validity: "Judge validity", audit: "Simulated-user audit", training: "Training record", human_labels: "Human labels" };
    // What qualifies the scores (reliability, validity, audit) is open; records to look up are folded.
    var folded = { training: true, human_labels: true };
    Object.keys(run.sections || {}).forEach(function (name) {
      var sec = foldCard((withTitle ? run.label + ": " : "") + (names[name] || name), "section-" + name, !folded[name] && !withTitle);
      sec.body.appendChild(generic(run.sections[name], 0, name));
      out.push(sec);
    });
    if (run.usage && Object.keys(run.usage).length) {
      var u = foldCard((withTitle ? run.label + ": " : "") + "Calls per role", null, false);
      u.body.appendChild(generic(run.usage, 0));
      out.push(u);
    }
    return out;
  }

  // ---- conversation tables (sortable, filterable) ----------------------------------------------

  function personaText(conv) {
    var p = conv.persona || {};
    return [p.profile, p.personality].filter(Boolean).join(" ");
  }

  function haystack(conv) {
    if (conv.__hay === undefined) {
      var parts = [conv.id, personaText(conv), conv.status, conv.error || ""];
      (conv.turns || []).forEach(function (t) { parts.push(t.user || "", t.assistant || ""); });
      conv.__hay = parts.join("\n").toLowerCase();
    }
    return conv.__hay;
  }

  /* A sortable, filterable table. rows: [{key, cells: [Node], sort: [value], hay: fn, status: [..], score: number}] */
  function sortableTable(columns, rows, onOpen, tableId) {
    var wrap = h("div", {});
    var q = h("input", { type: "search", placeholder: "search id, persona, messages…", "aria-label": "search conversations", id: tableId + "-search" });
    var statuses = [];
    rows.forEach(function (r) { r.status.forEach(function (s) { if (statuses.indexOf(s) < 0) statuses.push(s); }); });
    var st = h("select", { "aria-label": "status filter", id: tableId + "-status" }, h("option", { value: "", text: "any status" }),
      statuses.map(function (s) { return h("option", { value: s, text: s }); }));
    var lo = h("input", { type: "number", min: 1, max: 5, step: 0.1, placeholder: "1", "aria-label": "minimum mean score", id: tableId + "-min" });
    var hi = h("input", { type: "number", min: 1, max: 5, step: 0.1, placeholder: "5", "aria-label": "maximum mean score", id: tableId + "-max" });
    var count = h("span", { cls: "muted", id: tableId + "-count" });
    wrap.appendChild(h("div", { cls: "filters" }, h("label", {}, "Search", q), h("label", {}, "Status", st),
      h("label", {}, "Mean score from", lo, "to", hi), count));
    var table = h("table", { id: tableId });
    var head = h("tr", {});
    var sortBy = { col: -1, dir: 1 };
    columns.forEach(function (c, i) {
      var th = h("th", { cls: (c.num ? "num " : "") + (c.sortable === false ? "" : "sortable"), text: c.title, title: c.help || null, scope: "col" });
      if (c.sortable !== false) th.addEventListener("click", function () {
        sortBy.dir = sortBy.col === i ? -sortBy.dir : (c.num ? -1 : 1);
        sortBy.col = i;
        Array.prototype.forEach.call(head.children, function (x) { x.classList.remove("sorted-asc", "sorted-desc"); });
        th.classList.add(sortBy.dir > 0 ? "sorted-asc" : "sorted-desc");
        refresh();
      });
      head.appendChild(th);
    });
    var thead = h("thead", {}, head);
    var tbody = h("tbody", {});
    table.appendChild(thead);
    table.appendChild(tbody);
    rows.forEach(function (r) {
      var tr = h("tr", { cls: "conv", tabindex: 0, "data-id": r.key, onclick: function () { onOpen(r.key); },
        onkeydown: function (e) { if (e.key === "Enter") onOpen(r.key); } }, r.cells.map(function (c, i) { return h("td", { cls: columns[i].num ? "num" : null }, c); }));
      r.tr = tr;
    });
    function cmp(a, b) {
      var x = a.sort[sortBy.col], y = b.sort[sortBy.col];
      var xn = x === null || x === undefined || (typeof x === "number" && !isFinite(x));
      var yn = y === null || y === undefined || (typeof y === "number" && !isFinite(y));
      if (xn && yn) return 0;
      if (xn) return 1; // missing values last, whatever the direction
      if (yn) return -1;
      return (x < y ? -1 : x > y ? 1 : 0) * sortBy.dir;
    }
    function refresh() {
      var text = q.value.trim().toLowerCase();
      var want = st.value;
      var min = lo.value === "" ? null : Number(lo.value);
      var max = hi.value === "" ? null : Number(hi.value);
      var shown = rows.filter(function (r) {
        if (text && r.hay().indexOf(text) < 0) return false;
        if (want && r.status.indexOf(want) < 0) return false;
        if (min !== null && !(isNum(r.score) && r.score >= min)) return false;
        if (max !== null && !(isNum(r.score) && r.score <= max)) return false;
        return true;
      });
      if (sortBy.col >= 0) shown = shown.slice().sort(cmp);
      tbody.textContent = "";
      var frag = document.createDocumentFragment();
      shown.forEach(function (r) { frag.appendChild(r.tr); });
      tbody.appendChild(frag);
      count.textContent = "showing " + shown.length + " of " + rows.length;
    }
    [q, st, lo, hi].forEach(function (el) { el.addEventListener("input", refresh); el.addEventListener("change", refresh); });
    refresh();
    wrap.appendChild(h("div", { cls: "scroll" }, table));
    return wrap;
  }

  function conversationsCard(run, runIndex, tableId) {
    var mf = oneTurn(run), word = itemWord(run);
    var sec = card(mf ? cap(word) + "s" : "Conversations", "conversations");
    var convs = run.conversations || [];
    var columns, rows;
    if (mf) {
      columns = [{ title: "id" }, { title: "source" }, { title: "profile (what the model was given)" }, { title: "prompt" },
        { title: "rubric scores", sortable: false }, { title: "score", num: true }, { title: "status" }];
      rows = convs.map(function (c) {
        var t = (c.turns || [])[0] || {};
        var rub = (t.rubric_scores || []).map(function (g) { return isNum(g.score) ? g.score : null; });
        var src = (c.persona || {}).source || "";
        return { key: c.id, status: [c.status], score: isNum(t.score) ? t.score : null, hay: function () { return haystack(c); },
          sort: [c.id, src, (c.persona || {}).profile || "", t.user || "", null, isNum(t.score) ? t.score : null, c.status],
          cells: [h("code", { text: c.id }), src, h("div", { cls: "persona-sum", text: summary((c.persona || {}).profile, 140) }), h("div", { cls: "persona-sum", text: summary(t.user, 100) }), heatRow(rub, "rubric"), scoreBadge(isNum(t.score) ? t.score : null), statusBadge(c.status)] };
      });
    } else {
      columns = [{ title: "id" }, { title: "persona" }, { title: "scores per turn", sortable: false, help: "one square per turn, 1 red … 5 green, grey: no valid score" }, { title: "mean", num: true }, { title: "invalid", num: true, help: "turns without a valid judgement" }, { title: "status" }];
      rows = convs.map(function (c) {
        var sc = turnScores(c);
        var mn = mean(sc);
        var invalid = sc.filter(function (s) { return !isNum(s); }).length;
        return { key: c.id, status: [c.status], score: mn, hay: function () { return haystack(c); },
          sort: [c.id, personaText(c), null, mn, invalid, c.status],
          cells: [h("code", { text: c.id }), h("div", { cls: "persona-sum", text: summary(personaText(c), 150) }), heatRow(sc), fmt(mn, 2), String(invalid), statusBadge(c.status)] };
      });
    }
    sec.appendChild(h("p", { cls: "note", text: convs.length + (mf ? " " + word + "s" : " conversations") + ". Click a header to sort, a row to read it. The mean is over the turns with a valid score; failed conversations count in no metric." }));
    sec.appendChild(sortableTable(columns, rows, function (id) { openConversation(runIndex, id); }, tableId || "conv-table"));
    return sec;
  }

  // ---- the transcript --------------------------------------------------------------------------

  var detail, detailTitle, detailBody;

  function makeDetail() {
    detailTitle = h("h2", { id: "detail-title" });
    detailBody = h("div", { cls: "panel-body", id: "detail-body" });
    var close = h("button", { type: "button", id: "detail-close", text: "Close ✕", onclick: closeDetail });
    detail = h("div", { id: "detail", role: "dialog", "aria-modal": "true", "aria-labelledby": "detail-title",
      onclick: function (e) { if (e.target === detail) closeDetail(); } },
      h("div", { cls: "panel" }, h("div", { cls: "panel-head" }, detailTitle, close), detailBody));
    document.addEventListener("keydown", function (e) { if (e.key === "Escape") closeDetail(); });
    return detail;
  }

  function openDetail(title, body) {
    detailTitle.textContent = title;
    detailBody.textContent = "";
    detailBody.appendChild(body);
    detail.classList.add("open");
    detail.querySelector(".panel").scrollTop = 0;
    document.getElementById("detail-close").focus();
  }

  function closeDetail() {
    if (detail) detail.classList.remove("open");
    if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  }

  // A conversation's own address (#conv=ID, or #run=N&conv=ID), so a link can point a colleague at it.
  function setHash(runIndex, id, side) {
    var hash = side ? "#side=" + encodeURIComponent(id) : "#" + (runIndex ? "run=" + runIndex + "&" : "") + "conv=" + encodeURIComponent(id);
    history.replaceState(null, "", hash);
  }

  function openFromHash() {
    var params = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var i = kv.indexOf("=");
      if (i > 0) params[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1));
    });
    if (params.side && DATA.runs.length > 1) openSideBySide(params.side);
    else if (params.conv) {
      var r = Number(params.run || 0);
      if (r >= 0 && r < DATA.runs.length) openConversation(r, params.conv);
    }
  }

  function findConv(run, id) {
    var cs = run.conversations || [];
    for (var i = 0; i < cs.length; i++) if (cs[i].id === id) return cs[i];
    return null;
  }

  function personaPane(run, conv, audit) {
    var p = conv.persona || {};
    var pane = h("aside", { cls: "persona-pane" });
    if (p.personality === undefined) {  // an item without a persona's personality: what the model was given
      pane.appendChild(h("h3", { text: cap(itemWord(run)) + ": what the model was given" }));
      pane.appendChild(h("p", { cls: "persona-profile", text: p.profile || "" }));
      if (p.source) pane.appendChild(kv("source", p.source));
    } else {
      pane.appendChild(h("h3", { text: "Persona: profile" }));
      pane.appendChild(h("p", { cls: "persona-profile", text: p.profile || "" }));
      pane.appendChild(h("h3", { text: "Persona: personality" }));
      pane.appendChild(h("p", { cls: "persona-personality", text: p.personality || "" }));
    }
    Object.keys(p).forEach(function (k) {
      if (["profile", "personality", "source"].indexOf(k) < 0 && isScalar(p[k])) pane.appendChild(kv(k, scalarText(p[k])));
    });
    if (audit && Array.isArray(audit.facts)) {
      pane.appendChild(h("h3", { text: "Facts (audit)" }));
      var first = audit.first_revealed || [];
      var list = h("div", { cls: "facts" });
      audit.facts.forEach(function (f, i) {
        var when = first[i];
        list.appendChild(h("span", { cls: "fact" + (isNum(when) ? " revealed" : ""), "data-fact": i,
          title: isNum(when) ? "first revealed at turn " + when : "never revealed" }, (isNum(when) ? "[turn " + when + "] " : "[never] ") + String(f)));
      });
      pane.appendChild(list);
      pane.appendChild(h("p", { cls: "note", text: "Yellow: revealed by the simulated user (turn of first reveal). Point at a turn to see what it revealed." }));
    }
    if (conv.error) pane.appendChild(h("p", { cls: "note", text: "error: " + conv.error }));
    return pane;
  }

  function rawBlock(title, text) {
    if (text === null || text === undefined || text === "") return null;
    return h("details", {}, h("summary", { text: title }), h("pre", { cls: "raw", text: String(text) }));
  }

  function historyBlock(history, title) {
    if (!Array.isArray(history) || history.length < 2) return null;
    return h("details", {}, h("summary", { text: title || ("every answer, in order (" + history.length + ", re-asked " + (history.length - 1) + "×)") }),
      history.map(function (x, i) { return h("div", {}, h("div", { cls: "muted", text: "answer " + (i + 1) }), h("pre", { cls: "raw", text: typeof x === "string" ? x : JSON.stringify(x) })); }));
  }

  function judgementsTable(list, withPersona) {
    var t = h("table", { cls: withPersona ? "generic swap-judgements" : "generic judgements" });
    t.appendChild(h("tr", {}, [withPersona ? "persona" : null, "judge", "repeat", "score", "attempts", "error", "raw answer"].filter(Boolean).map(function (c) { return h("th", { text: c }); })));
    list.forEach(function (j) {
      t.appendChild(h("tr", {},
        withPersona ? h("td", { text: String(j.persona_id === undefined ? "" : j.persona_id) }) : null,
        h("td", { text: String(j.judge === undefined ? "" : j.judge) }), h("td", { cls: "num", text: j.repeat === undefined ? "" : String(j.repeat) }),
        h("td", { cls: "num" }, scoreBadge(isNum(j.score) ? j.score : null)), h("td", { cls: "num", text: j.attempts === undefined ? "" : String(j.attempts) }),
        h("td", { text: j.error ? String(j.error) : "" }),
        h("td", {}, rawBlock("answer", j.raw), historyBlock(j.history))));
    });
    return h("div", { cls: "scroll" }, t);
  }

  function rubricTable(list) {
    var t = h("table", { cls: "generic rubrics" });
    t.appendChild(h("tr", {}, ["rubric", "dimension", "criteria", "score", "feedback (judge's answers)"].map(function (c) { return h("th", { text: c }); })));
    list.forEach(function (g) {
      var fb = h("td", {});
      (g.samples || []).forEach(function (s, r) {
        fb.appendChild(h("div", { cls: "muted", text: (g.samples.length > 1 ? "repeat " + (r + 1) + ": " : "") + "score " + scoreText(s.score) + ", " + (s.attempts || 1) + " attempt(s)" + (s.error ? ", error: " + s.error : "") }));
        if (s.raw) fb.appendChild(h("pre", { cls: "raw", text: String(s.raw) }));
        fb.appendChild(historyBlock(s.answers));
      });
      t.appendChild(h("tr", {}, h("td", { cls: "num", text: String(g.rubric) }), h("td", { text: String(g.dimension || "") }), h("td", { text: String(g.criteria || "") }),
        h("td", { cls: "num" }, scoreBadge(isNum(g.score) ? g.score : null)), fb));
    });
    return h("div", { cls: "scroll" }, t);
  }

  // An inference-time strategy (docs/strategies.md): the texts it produced before the reply (draft,
  // critique, reasoning, recalled messages), which neither the simulated user nor the judge saw.
  function strategyBlock(st) {
    var steps = Array.isArray(st.intermediate) ? st.intermediate : [];
    var body = h("div", { cls: "strategy-steps" });
    steps.forEach(function (step) {
      var text = Array.isArray(step.text) ? (step.text.length ? step.text.map(function (x) { return "- " + String(x); }).join("\n") : "(none)") : String(step.text === null || step.text === undefined ? "" : step.text);
      body.appendChild(h("div", { cls: "muted", text: String(step.kind || "step") }));
      body.appendChild(h("pre", { cls: "raw strategy-step", "data-kind": String(step.kind || ""), text: text }));
    });
    if (!steps.length) body.appendChild(h("div", { cls: "muted", text: "no intermediate texts (the strategy only changes the instructions)" }));
    var d = h("details", { cls: "strategy" }, h("summary", { text: "strategy " + String(st.name || "?") + ": " + (st.calls === undefined ? "?" : st.calls) + " model call(s) for this reply; shown to neither the simulated user nor the judge" }), body);
    d.open = steps.length > 0;
    return d;
  }

  // Best-of-N (docs/best-of-n.md): every candidate the policy sampled, its reward, the one chosen.
  function candidatesBlock(b) {
    var list = Array.isArray(b.candidates) ? b.candidates : [];
    var t = h("table", { cls: "generic candidates" });
    t.appendChild(h("tr", {}, ["#", "reward", "seed", "tokens", "reply"].map(function (c) { return h("th", { text: c }); })));
    list.forEach(function (c, i) {
      var chosen = i === b.chosen;
      t.appendChild(h("tr", { cls: chosen ? "chosen" : "" }, h("td", { cls: "num", text: String(i) + (chosen ? " (chosen)" : "") }),
        h("td", { cls: "num", text: isNum(c.reward) ? fmt(c.reward, 3) : "—" }), h("td", { cls: "num", text: c.seed === undefined ? "" : String(c.seed) }),
        h("td", { cls: "num", text: c.completion_tokens === undefined ? "" : String(c.completion_tokens) }),
        h("td", {}, h("pre", { cls: "raw", text: c.error ? "error: " + c.error : String(c.text === null || c.text === undefined ? "" : c.text) }))));
    });
    return h("details", {}, h("summary", { text: "best-of-" + (b.n || list.length) + ": candidate " + b.chosen + " chosen by the reward model (" + (b.format || "?") + " format)" }), h("div", { cls: "scroll" }, t));
  }

  var KNOWN_TURN = ["user", "assistant", "score", "judge_raw", "judge_attempts", "judge_error", "judged", "judgements", "swap_judgements", "rubric_scores", "best_of_n", "strategy", "scores"];

  function turnBlock(run, conv, t, k, audit) {
    var mf = oneTurn(run);
    var box = h("div", { cls: "turn", "data-turn": k + 1 });
    var head = h("div", { cls: "turn-head" }, h("strong", { text: mf ? cap(itemWord(run)) : "Turn " + (k + 1) }), scoreBadge(isNum(t.score) ? t.score : null));
    if (t.judge_attempts > 1) head.appendChild(h("span", { cls: "badge", text: "judge re-asked " + (t.judge_attempts - 1) + "×" }));
    if (t.judge_error) head.appendChild(h("span", { cls: "badge failed", text: "judge error: " + t.judge_error }));
    if (t.judged === false) head.appendChild(h("span", { cls: "badge running", text: "not judged yet" }));
    var named = Object.keys(t.scores || {});  // each scorer's verdict, by the scorer's name
    if (named.length) head.appendChild(h("span", { cls: "badge scorers", text: named.map(function (n) {
      var v = (t.scores[n] || {}).value;
      return n + " " + (isNum(v) ? String(Math.round(v * 100) / 100) : "–");
    }).join(" · ") }));
    box.appendChild(head);
    var at = null;
    if (audit && Array.isArray(audit.turns)) {
      audit.turns.forEach(function (x) { if (x && x.turn === k + 1) at = x; });
    }
    if (at) {
      var marks = h("div", { cls: "audit-marks" });
      (at.revealed || []).forEach(function (i) { marks.appendChild(h("span", { cls: "chip", text: "revealed: " + String((audit.facts || [])[i] === undefined ? "fact " + i : audit.facts[i]) })); });
      (at.role_breaks || []).forEach(function (c) { marks.appendChild(h("span", { cls: "chip bad", text: "role break: " + String(c) })); });
      if (at.advice_request) marks.appendChild(h("span", { cls: "chip bad", text: "asks for advice" }));
      (at.contradictions || []).forEach(function (c) { marks.appendChild(h("span", { cls: "chip bad", text: "contradiction: " + (typeof c === "string" ? c : JSON.stringify(c)) })); });
      if (marks.childNodes.length) box.appendChild(marks);
      box.addEventListener("click", function () { box.dispatchEvent(new Event("mouseenter")); }); // phones have no hover
      box.addEventListener("mouseenter", function () {
        var pane = box.parentNode && box.parentNode.parentNode;
        if (!pane) return;
        Array.prototype.forEach.call(pane.querySelectorAll(".fact"), function (f) {
          f.classList.toggle("now", (at.revealed || []).indexOf(Number(f.getAttribute("data-fact"))) >= 0);
        });
      });
    }
    box.appendChild(h("div", { cls: "msg user" }, h("span", { cls: "who", text: mf ? "prompt" : "simulated user" }), t.user === null || t.user === undefined ? "" : String(t.user)));
    if (t.strategy && typeof t.strategy === "object") box.appendChild(strategyBlock(t.strategy));
    box.appendChild(h("div", { cls: "msg assistant" }, h("span", { cls: "who", text: "model reply" }), t.assistant === null || t.assistant === undefined ? "(no reply)" : String(t.assistant)));
    if (t.best_of_n && typeof t.best_of_n === "object") box.appendChild(candidatesBlock(t.best_of_n));
    if (Array.isArray(t.rubric_scores) && t.rubric_scores.length) box.appendChild(rubricTable(t.rubric_scores));
    if (Array.isArray(t.judgements) && t.judgements.length) {
      box.appendChild(h("div", { cls: "muted", text: "judgements (" + t.judgements.length + "; the turn's score is their mean)" }));
      box.appendChild(judgementsTable(t.judgements, false));
    }
    if (Array.isArray(t.swap_judgements) && t.swap_judgements.length) {
      box.appendChild(h("div", { cls: "muted", text: "swap control: the same reply judged against another persona" }));
      box.appendChild(judgementsTable(t.swap_judgements, true));
    }
    if (!(Array.isArray(t.rubric_scores) && t.rubric_scores.length)) {
      var raw = rawBlock("judge's answer" + (t.judge_attempts > 1 ? " (last of " + t.judge_attempts + " attempts)" : ""), t.judge_raw);
      if (raw) { raw.open = true; box.appendChild(raw); }
    }
    var extra = {};
    Object.keys(t).forEach(function (key) { if (KNOWN_TURN.indexOf(key) < 0) extra[key] = t[key]; });
    if (Object.keys(extra).length) box.appendChild(h("details", {}, h("summary", { text: "other fields" }), generic(extra, 1)));
    return box;
  }

  function openConversation(runIndex, id) {
    var run = DATA.runs[runIndex];
    var conv = findConv(run, id);
    if (!conv) return;
    var audit = run.audit ? run.audit[conv.id] : null;
    var turns = h("div", { cls: "turns" });
    (conv.turns || []).forEach(function (t, k) { turns.appendChild(turnBlock(run, conv, t, k, audit)); });
    if (!(conv.turns || []).length) turns.appendChild(h("p", { cls: "muted", text: "no turns recorded" }));
    var sc = turnScores(conv);
    var what = oneTurn(run) ? " score " + fmt(mean(sc), 2) : " mean score " + fmt(mean(sc), 2) + " over " + sc.filter(isNum).length + " scored turn(s)";
    var top = h("p", { cls: "note" }, statusBadge(conv.status), what + (DATA.runs.length > 1 ? " · run " + run.label : ""));
    setHash(runIndex, conv.id, false);
    openDetail((oneTurn(run) ? cap(itemWord(run)) + " " : "Conversation ") + conv.id, h("div", {}, top, h("div", { cls: "transcript" }, personaPane(run, conv, audit), turns)));
  }

  // ---- several runs -----------------------------------------------------------------------------

  function comparisonCard() {
    var runs = DATA.runs;
    var sec = card("Paired comparison with " + runs[0].label, "comparison");
    var cs = DATA.compare_settings || {};
    sec.appendChild(h("p", { cls: "note", text: "B − A, paired by persona (a persona's mean score over turns is the unit): mean difference with a paired bootstrap 95% CI (" +
      (cs.n_bootstrap || "?") + " resamples), two-sided Wilcoxon signed-rank p, and Holm-corrected p over the " + (runs.length - 1) + " comparison(s). Computed by aloe_bench.reports.compare, as `aloe-bench compare` prints it." }));
    var t = h("table", { id: "comparison-table" }, h("tr", {}, ["B (vs A = " + runs[0].label + ")", "paired n", "dropped (A only / B only)", "mean A", "mean B", "B − A", "95% CI", "p (Wilcoxon)", "p (Holm)", "pairs that differ"].map(function (c) { return h("th", { text: c }); })));
    (DATA.comparisons || []).forEach(function (c) {
      var d = c.overall || {};
      t.appendChild(h("tr", {}, h("td", {}, h("span", { cls: "sw", style: "display:inline-block;width:10px;height:10px;margin-right:5px;background:" + runColor(c.b) }), runs[c.b].label),
        h("td", { cls: "num", text: d.n }), h("td", { cls: "num", text: d.only_a + " / " + d.only_b }), h("td", { cls: "num", text: fmt(d.mean_a, 3) }), h("td", { cls: "num", text: fmt(d.mean_b, 3) }),
        h("td", { cls: "num " + (d.diff > 0 ? "delta-pos" : d.diff < 0 ? "delta-neg" : ""), text: signed(d.diff, 3) }), h("td", { text: fmtCi(d.ci, 3, true) }),
        h("td", { cls: "num", text: fmtP(d.p_value) }), h("td", { cls: "num", text: fmtP(c.p_holm) }), h("td", { cls: "num", text: d.nonzero + " of " + d.n })));
    });
    sec.appendChild(h("div", { cls: "scroll" }, t));
    var K = Math.max.apply(null, (DATA.comparisons || []).map(function (c) { return (c.per_turn || []).length; }).concat([0]));
    if (K > 0) {
      var pt = h("table", { id: "comparison-turns" });
      var hr = h("tr", {}, h("th", { text: "turn" }));
      DATA.comparisons.forEach(function (c) { hr.appendChild(h("th", { text: runs[c.b].label + ": B − A [95% CI] (p, n)" })); });
      pt.appendChild(hr);
      for (var k = 0; k < K; k++) {
        var tr = h("tr", {}, h("td", { cls: "num", text: k + 1 }));
        DATA.comparisons.forEach(function (c) {
          var d = (c.per_turn || [])[k] || {};
          tr.appendChild(h("td", { text: signed(d.diff, 2) + " " + fmtCi(d.ci, 2, true) + " (p " + fmtP(d.p_value) + ", n " + (d.n === undefined ? "?" : d.n) + ")" }));
        });
        pt.appendChild(tr);
      }
      sec.appendChild(h("h3", { text: "Per turn (personas scored at that turn in both runs)" }));
      sec.appendChild(h("div", { cls: "scroll" }, pt));
    }
    var notScored = (DATA.comparisons || []).map(function (c) { return runs[c.b].label + ": A " + c.failed_a + " failed + " + c.unscored_a + " unscored, B " + c.failed_b + " failed + " + c.unscored_b + " unscored"; });
    if (notScored.length) sec.appendChild(h("p", { cls: "note", text: "Not paired — " + notScored.join("; ") + "." }));
    return sec;
  }

  function matchedCard() {
    var runs = DATA.runs;
    var sec = card("Personas across runs", "conversations");
    var ids = [];
    var byRun = runs.map(function (run) {
      var m = {};
      (run.conversations || []).forEach(function (c) { m[c.id] = c; if (ids.indexOf(c.id) < 0) ids.push(c.id); });
      return m;
    });
    var columns = [{ title: "id" }, { title: "persona" }, { title: "scores per turn (one row per run)", sortable: false }];
    runs.forEach(function (r, i) { columns.push({ title: "mean " + (i + 1), num: true, help: r.label }); });
    runs.slice(1).forEach(function (r, i) { columns.push({ title: "Δ " + (i + 2) + "−1", num: true, help: r.label + " minus " + runs[0].label }); });
    columns.push({ title: "status" });
    var rows = ids.map(function (id) {
      var convs = byRun.map(function (m) { return m[id] || null; });
      var first = convs.filter(Boolean)[0];
      var means = convs.map(function (c) { return c && c.status === "complete" ? mean(turnScores(c)) : null; });
      var deltas = means.slice(1).map(function (m) { return isNum(m) && isNum(means[0]) ? m - means[0] : null; });
      var heat = h("div", {}, convs.map(function (c, i) {
        return h("div", { cls: "heat-row" }, h("span", { cls: "who", text: String(i + 1), style: "color:" + runColor(i) }), c ? heatRow(turnScores(c), runs[i].label) : h("span", { cls: "muted", text: "not in this run" }));
      }));
      var statuses = convs.map(function (c) { return c ? c.status : "missing"; });
      var cells = [h("code", { text: id }), h("div", { cls: "persona-sum", text: summary(personaText(first), 120) }), heat]
        .concat(means.map(function (m) { return fmt(m, 2); }))
        .concat(deltas.map(function (d) { return h("span", { cls: d > 0 ? "delta-pos" : d < 0 ? "delta-neg" : "", text: signed(d, 2) }); }))
        .concat([h("div", {}, statuses.map(function (s) { return statusBadge(s); }))]);
      return { key: id, status: statuses, score: means[0], cells: cells,
        hay: function () { return convs.filter(Boolean).map(haystack).join("\n"); },
        sort: [id, personaText(first), null].concat(means).concat(deltas).concat([statuses.join(",")]) };
    });
    var legend = runs.map(function (r, i) { return (i + 1) + " = " + r.label; }).join(" · ");
    sec.appendChild(h("p", { cls: "note", text: "Matched by persona id. " + legend + ". The score filter applies to run 1's mean. Click a row to read the conversations side by side." }));
    sec.appendChild(sortableTable(columns, rows, openSideBySide, "conv-table"));
    return sec;
  }

  function openSideBySide(id) {
    var runs = DATA.runs;
    var convs = runs.map(function (r) { return findConv(r, id); });
    var first = convs.filter(Boolean)[0];
    var K = Math.max.apply(null, convs.map(function (c) { return c ? (c.turns || []).length : 0; }));
    var cols = "repeat(" + runs.length + ", minmax(0, 1fr))";
    var body = h("div", { cls: "side" });
    var p = (first && first.persona) || {};
    body.appendChild(h("div", { cls: "side-cell" }, h("strong", { text: "Persona " }), h("span", { cls: "persona-profile", text: p.profile || "" }), p.personality ? h("div", { cls: "muted persona-personality", text: p.personality }) : null));
    var headRow = h("div", { cls: "side-row", style: "grid-template-columns:" + cols });
    convs.forEach(function (c, i) {
      var m = c ? mean(turnScores(c)) : null;
      var m0 = convs[0] ? mean(turnScores(convs[0])) : null;
      headRow.appendChild(h("div", { cls: "side-cell", style: "border-top:4px solid " + runColor(i) }, h("strong", { text: runs[i].label }), " ",
        c ? statusBadge(c.status) : h("span", { cls: "muted", text: "not in this run" }), h("div", { text: "mean " + fmt(m, 2) + (i > 0 ? "  (Δ " + signed(isNum(m) && isNum(m0) ? m - m0 : null, 2) + ")" : "") }),
        c ? h("button", { type: "button", text: "full transcript", onclick: function () { openConversation(i, id); } }) : null));
    });
    body.appendChild(headRow);
    for (var k = 0; k < K; k++) {
      body.appendChild(h("h3", { text: "Turn " + (k + 1) }));
      var row = h("div", { cls: "side-row", style: "grid-template-columns:" + cols, "data-turn": k + 1 });
      var base = convs[0] && convs[0].turns && convs[0].turns[k] ? convs[0].turns[k].score : null;
      convs.forEach(function (c, i) {
        var t = c && c.turns ? c.turns[k] : null;
        if (!t) { row.appendChild(h("div", { cls: "side-cell muted", text: "no turn " + (k + 1) })); return; }
        var d = i > 0 && isNum(t.score) && isNum(base) ? t.score - base : null;
        row.appendChild(h("div", { cls: "side-cell", style: "border-top:3px solid " + runColor(i) },
          h("div", { cls: "turn-head" }, scoreBadge(isNum(t.score) ? t.score : null), i > 0 ? h("span", { cls: "delta " + (d > 0 ? "delta-pos" : d < 0 ? "delta-neg" : ""), text: "Δ " + signed(d, 2) }) : null),
          h("div", { cls: "msg user" }, h("span", { cls: "who", text: "simulated user" }), String(t.user || "")),
          h("div", { cls: "msg assistant" }, h("span", { cls: "who", text: "model reply" }), t.assistant === null || t.assistant === undefined ? "(no reply)" : String(t.assistant)),
          rawBlock("judge's answer", t.judge_raw)));
      });
      body.appendChild(row);
    }
    setHash(0, id, true);
    openDetail("Persona " + id + " across " + runs.length + " runs", body);
  }

  // Several runs: their headline figures in one table, each with its interval and n.
  function scoresTable() {
    var mf = DATA.runs.every(oneTurn);
    var sec = card("Scores per run", "scores");
    var cols = mf ? ["run", "n", headline(DATA.runs[0]).label + " [95% CI]", "failed"] : ["run", "n", "AVG [95% CI]", "IR [95% CI]", "N-IR [95% CI]", "N-R² [95% CI]", "failed"];
    var t = h("table", { id: "scores-table" }, h("tr", {}, cols.map(function (c) { return h("th", { text: c }); })));
    DATA.runs.forEach(function (r, i) {
      var m = r.metrics || {}, ci = m.ci || {};
      var name = h("td", {}, h("span", { style: "display:inline-block;width:10px;height:10px;margin-right:5px;background:" + runColor(i) }), r.label);
      var cells = [name, h("td", { cls: "num", text: m.conversations === undefined ? "?" : m.conversations })];
      if (mf) cells.push(h("td", { text: fmt(headline(r).value, 3) + " " + fmtCi(headline(r).interval, 3) }));
      else cells.push(h("td", { text: fmt(m.avg, 3) + " " + fmtCi(ci.avg, 3) }), h("td", { text: signed(m.ir, 4) + " " + fmtCi(ci.ir, 4, true) }),
        h("td", { text: signed(m.n_ir, 4) + " " + fmtCi(ci.n_ir, 4, true) }), h("td", { text: fmt(m.n_r2, 4) + " " + fmtCi(ci.n_r2, 4) }));
      cells.push(h("td", { cls: "num", text: (r.failures || []).length }));
      t.appendChild(h("tr", {}, cells));
    });
    sec.appendChild(h("div", { cls: "scroll" }, t));
    var viewer = DATA.runs.some(function (r) { return (r.metrics.ci || {}).normalized_by_viewer; });
    sec.appendChild(h("p", { cls: "note", text: "n: conversations scored. Intervals: each run's bootstrap over its conversations" + (viewer ? "; N-IR and N-R² intervals computed by the viewer with the same resampling" : "") + ". Per-turn tables are under each run below." }));
    return sec;
  }

  function openRunList(i) {
    var run = DATA.runs[i];
    var sec = conversationsCard(run, i, "run-conv-table");
    sec.id = "run-conversations";
    openDetail("Conversations of " + run.label, sec);
  }

  // ---- the page ---------------------------------------------------------------------------------

  function render() {
    var app = document.getElementById("app");
    var runs = DATA.runs || [];
    var frag = document.createDocumentFragment();
    frag.appendChild(pageHeader());
    var main = h("main", {});
    add(main, warningsBlock());
    if (runs.length === 1) {
      var run = runs[0];
      main.appendChild(runInfo(run, false));
      main.appendChild(metricsCard(run, false));
      if (!oneTurn(run)) main.appendChild(curveCard());
      sectionsCards(run, false).forEach(function (s) { main.appendChild(s); });
      main.appendChild(conversationsCard(run, 0));
    } else {
      if (!DATA.runs.every(oneTurn)) main.appendChild(curveCard());
      main.appendChild(scoresTable());
      main.appendChild(comparisonCard());
      main.appendChild(matchedCard());
      main.appendChild(h("h2", { cls: "group", text: "Each run in detail" }));
      runs.forEach(function (r, i) {
        var f = foldCard("Run " + (i + 1) + ": " + r.label, "run-" + (i + 1), false);
        f.body.appendChild(runInfo(r, false));
        f.body.appendChild(metricsCard(r, false));
        sectionsCards(r, false).forEach(function (s) { f.body.appendChild(s); });
        f.body.appendChild(h("button", { type: "button", text: "open this run's conversations", onclick: function () { openRunList(i); } }));
        main.appendChild(f);
      });
    }
    main.appendChild(h("p", { cls: "note", text: "Generated by aloe-bench view from the run directories' results.json and conversations.jsonl; regenerate with `aloe-bench view " + runs.map(function (r) { return r.path; }).join(" ") + "`." }));
    frag.appendChild(main);
    frag.appendChild(makeDetail());
    app.textContent = "";
    app.appendChild(frag);
  }

  try {
    DATA = JSON.parse(document.getElementById("aloe-data").textContent);
    render();
    if (location.hash) openFromHash();
    window.__aloeReadyMs = performance.now(); // time to interactive, from navigation start
    window.__aloeReady = true;
    document.documentElement.setAttribute("data-ready", "1");
  } catch (err) {
    var app = document.getElementById("app");
    app.textContent = "";
    app.appendChild(h("p", { cls: "warning severe", text: "This report could not be drawn: " + (err && err.message ? err.message : String(err)) }));
    console.error(err);
  }
})();
