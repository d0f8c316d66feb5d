// sharklib lineage graph: a small canvas renderer. The layout comes precomputed in the data
// (layered DAG, see sharklib/views/graph.py); this file only draws, pans, zooms and shows details.
// Every string from a manifest is drawn with fillText or set with textContent: never as markup.
(function () {
  "use strict";
  var t0 = performance.now();
  var data = JSON.parse(document.getElementById("shark-data").textContent);
  var nodes = data.nodes, n = nodes.length;
  var W = 200, H = 36;
  var index = new Map();
  for (var i = 0; i < n; i++) index.set(nodes[i].id, i);
  var ea = new Int32Array(data.edges.length), eb = new Int32Array(data.edges.length);
  for (var k = 0; k < data.edges.length; k++) {
    ea[k] = index.get(data.edges[k][0]);
    eb[k] = index.get(data.edges[k][1]);
  }
  var xs = new Float64Array(n), ys = new Float64Array(n);
  var minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (i = 0; i < n; i++) {
    xs[i] = nodes[i].x; ys[i] = nodes[i].y;
    if (xs[i] < minX) minX = xs[i];
    if (ys[i] < minY) minY = ys[i];
    if (xs[i] > maxX) maxX = xs[i];
    if (ys[i] > maxY) maxY = ys[i];
  }
  if (!n) { minX = minY = 0; maxX = maxY = 0; }

  var FILL = { step: "#3d6fb6", file: "#ffffff", stale: "#f3a93c", missing: "#c9ccd2",
               bad: "#d64545", download: "#8e5bb5" };
  function colourOf(nd) {
    if (nd.kind === "step") return (nd.state === "verified") ? "step" : "bad";
    if (nd.kind === "download") return "download";
    if (nd.state === "stale") return "stale";
    if (nd.state === "missing") return "missing";
    return "file";
  }
  var colour = new Array(n);
  var stale = 0, bad = 0, folded = [], steps = 0;
  for (i = 0; i < n; i++) {
    if (nodes[i].count) folded.push(i);
    if (nodes[i].kind === "step") steps += nodes[i].count || 1;
    colour[i] = colourOf(nodes[i]);
    if (colour[i] === "stale") stale++;
    if (colour[i] === "bad") bad++;
  }

  var canvas = document.getElementById("graph");
  var ctx = canvas.getContext("2d");
  var details = document.getElementById("details");
  var view = { s: 1, tx: 0, ty: 0 };
  var selected = -1, cssW = 0, cssH = 0, dpr = 1, pending = false;

  document.getElementById("title").textContent = "lineage of " + data.target;
  document.getElementById("counts").textContent = n + " nodes, " + data.edges.length + " edges" +
    (folded.length ? ", " + steps.toLocaleString("en-US") + " steps" : "") +
    (stale ? ", " + stale + " stale" : "") + (bad ? ", " + bad + " unverified" : "");

  function resize() {
    dpr = window.devicePixelRatio || 1;
    cssW = canvas.clientWidth; cssH = canvas.clientHeight;
    canvas.width = Math.max(1, Math.round(cssW * dpr));
    canvas.height = Math.max(1, Math.round(cssH * dpr));
  }
  function fit() {
    var bw = maxX - minX + W, bh = maxY - minY + H, pad = 40;
    var s = Math.min((cssW - pad) / bw, (cssH - pad) / bh, 1.5);
    if (!(s > 0)) s = 1;
    view.s = s;
    view.tx = (cssW - bw * s) / 2 - minX * s;
    view.ty = (cssH - bh * s) / 2 - minY * s;
  }
  function clip(text, px) {
    var max = Math.floor(px / 6.6);
    return text.length > max ? text.slice(0, Math.max(1, max - 1)) + "\u2026" : text;
  }
  // What a node shows: its label clipped to the box; a folded node's count is never clipped.
  function labelOf(j) {
    var nd = nodes[j];
    if (!nd.count) return clip(nd.label, W - 12);
    var tail = " \u00d7" + nd.count.toLocaleString("en-US");
    var body = nd.label.slice(0, nd.label.length - tail.length);
    return clip(body, W - 12 - tail.length * 6.6) + tail;
  }
  function draw() {
    pending = false;
    var s = view.s;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    ctx.setTransform(s * dpr, 0, 0, s * dpr, view.tx * dpr, view.ty * dpr);
    var x0 = -view.tx / s - W, y0 = -view.ty / s - H;
    var x1 = (cssW - view.tx) / s, y1 = (cssH - view.ty) / s;
    function vis(j) { return xs[j] >= x0 && xs[j] <= x1 && ys[j] >= y0 && ys[j] <= y1; }
    ctx.lineWidth = Math.max(0.6, 1 / s);
    ctx.strokeStyle = "#8a94a6";
    ctx.beginPath();
    for (var e = 0; e < ea.length; e++) {
      var a = ea[e], b = eb[e];
      var ax = xs[a] + W, ay = ys[a] + H / 2, bx = xs[b], by = ys[b] + H / 2;
      if ((ax < x0 && bx < x0) || (ax > x1 + W && bx > x1 + W) ||
          (ay < y0 && by < y0) || (ay > y1 + H && by > y1 + H)) continue;
      ctx.moveTo(ax, ay);
      ctx.bezierCurveTo(ax + 40, ay, bx - 40, by, bx, by);
    }
    ctx.stroke();
    var visible = [];
    for (var j = 0; j < n; j++) if (vis(j)) visible.push(j);
    var groups = {};
    for (var v = 0; v < visible.length; v++) {
      var c = colour[visible[v]];
      (groups[c] || (groups[c] = [])).push(visible[v]);
    }
    ctx.strokeStyle = "#44506a";
    for (var f = 0; f < folded.length; f++) {  // a folded node is drawn as a stack of cards
      var fj = folded[f];
      if (!vis(fj)) continue;
      ctx.fillStyle = FILL[colour[fj]];
      for (var d = 8; d > 0; d -= 4) {
        ctx.fillRect(xs[fj] + d, ys[fj] - d, W, H);
        ctx.strokeRect(xs[fj] + d, ys[fj] - d, W, H);
      }
    }
    for (var key in groups) {
      ctx.fillStyle = FILL[key];
      ctx.beginPath();
      var g = groups[key];
      for (var q = 0; q < g.length; q++) ctx.rect(xs[g[q]], ys[g[q]], W, H);
      ctx.fill();
      ctx.stroke();
    }
    if (selected >= 0) {
      ctx.lineWidth = Math.max(2, 3 / s);
      ctx.strokeStyle = "#f0c419";
      ctx.strokeRect(xs[selected] - 3, ys[selected] - 3, W + 6, H + 6);
    }
    if (s > 0.35 && visible.length < 4000) {
      ctx.font = "12px system-ui, sans-serif";
      ctx.textBaseline = "middle";
      for (v = 0; v < visible.length; v++) {
        j = visible[v];
        var cc = colour[j];
        ctx.fillStyle = (cc === "step" || cc === "bad" || cc === "download") ? "#fff" : "#1d2330";
        ctx.fillText(labelOf(j), xs[j] + 6, ys[j] + H / 2);
      }
    }
  }
  function request() { if (!pending) { pending = true; requestAnimationFrame(draw); } }

  function row(dl, key, value) {
    var dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = key; dd.textContent = value;
    dl.appendChild(dt); dl.appendChild(dd);
  }
  function showDetails(j) {
    selected = j;
    details.textContent = "";
    if (j < 0) return;
    var nd = nodes[j];
    var h = document.createElement("h2");
    h.textContent = nd.label;
    details.appendChild(h);
    var st = document.createElement("span");
    st.className = "state";
    st.style.background = FILL[colour[j]] === "#ffffff" ? "#4b8f4b" : FILL[colour[j]];
    st.textContent = nd.kind + ": " + nd.state;
    details.appendChild(st);
    var dl = document.createElement("dl");
    var d = nd.details || {};
    for (var key in d) if (Object.prototype.hasOwnProperty.call(d, key)) row(dl, key, String(d[key]));
    details.appendChild(dl);
    if (nd.count) details.appendChild(memberList(nd));
    details.setAttribute("data-node", nd.id);
    request();
  }
  // Member k of a folded node: its label pieces around holes, filled with its own words.
  function memberLabel(nd, k) {
    var fill = nd.fills[k], parts = nd.parts, text = parts[0];
    for (var p = 1; p < parts.length; p++) {
      text += (typeof fill === "string" ? fill : fill[p - 1]) + parts[p];
    }
    return text;
  }
  // A collapsed list of a folded node's members, built only when opened.
  function memberList(nd) {
    var box = document.createElement("details");
    box.className = "members";
    var sum = document.createElement("summary");
    sum.textContent = nd.count.toLocaleString("en-US") + " " +
      (nd.kind === "step" ? "steps" : "files") + " folded into this node";
    box.appendChild(sum);
    box.addEventListener("toggle", function () {
      if (!box.open || box.querySelector("ol")) return;
      var ol = document.createElement("ol"), frag = document.createDocumentFragment();
      for (var k = 0; k < nd.count; k++) {
        var li = document.createElement("li");
        li.textContent = memberLabel(nd, k);
        frag.appendChild(li);
      }
      ol.appendChild(frag);
      box.appendChild(ol);
    });
    return box;
  }
  function hit(cx, cy) {
    var wx = (cx - view.tx) / view.s, wy = (cy - view.ty) / view.s;
    for (var j = n - 1; j >= 0; j--) {
      if (wx >= xs[j] && wx <= xs[j] + W && wy >= ys[j] && wy <= ys[j] + H) return j;
    }
    return -1;
  }
  function zoomAt(cx, cy, f) {
    var s2 = Math.min(8, Math.max(1e-4, view.s * f));
    f = s2 / view.s;
    view.tx = cx - (cx - view.tx) * f;
    view.ty = cy - (cy - view.ty) * f;
    view.s = s2;
    request();
  }

  var drag = null;
  canvas.addEventListener("pointerdown", function (ev) {
    drag = { x: ev.clientX, y: ev.clientY, tx: view.tx, ty: view.ty, moved: false };
    canvas.setPointerCapture(ev.pointerId);
    canvas.classList.add("dragging");
  });
  canvas.addEventListener("pointermove", function (ev) {
    if (!drag) return;
    var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
    view.tx = drag.tx + dx; view.ty = drag.ty + dy;
    request();
  });
  canvas.addEventListener("pointerup", function (ev) {
    canvas.classList.remove("dragging");
    if (drag && !drag.moved) {
      var r = canvas.getBoundingClientRect();
      showDetails(hit(ev.clientX - r.left, ev.clientY - r.top));
    }
    drag = null;
  });
  canvas.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var r = canvas.getBoundingClientRect();
    zoomAt(ev.clientX - r.left, ev.clientY - r.top, Math.exp(-ev.deltaY * 0.0015));
  }, { passive: false });
  document.getElementById("zoom-in").addEventListener("click", function () { zoomAt(cssW / 2, cssH / 2, 1.25); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoomAt(cssW / 2, cssH / 2, 0.8); });
  document.getElementById("fit").addEventListener("click", function () { fit(); request(); });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "+" || ev.key === "=") zoomAt(cssW / 2, cssH / 2, 1.25);
    else if (ev.key === "-") zoomAt(cssW / 2, cssH / 2, 0.8);
    else if (ev.key === "0") { fit(); request(); }
  });
  window.addEventListener("resize", function () { resize(); request(); });

  resize();
  fit();
  draw();
  var api = {
    nodeCount: n,
    // The labels of folded node ``id``'s members (what its list shows when opened).
    members: function (id) {
      var j = index.get(id);
      if (j === undefined || !nodes[j].count) return null;
      var out = [];
      for (var k = 0; k < nodes[j].count; k++) out.push(memberLabel(nodes[j], k));
      return out;
    },
    edgeCount: ea.length,
    rendered: true,
    renderMs: performance.now() - t0,
    // Where node ``id`` is on screen (CSS pixels, page coordinates): lets a test click it.
    screenPosition: function (id) {
      var j = index.get(id);
      if (j === undefined) return null;
      var r = canvas.getBoundingClientRect();
      return { x: r.left + view.tx + (xs[j] + W / 2) * view.s,
               y: r.top + view.ty + (ys[j] + H / 2) * view.s };
    },
    focus: function (id) {
      var j = index.get(id);
      if (j === undefined) return false;
      view.s = 1;
      view.tx = cssW / 2 - (xs[j] + W / 2);
      view.ty = cssH / 2 - (ys[j] + H / 2);
      draw();
      return true;
    },
    select: function (id) { var j = index.get(id); showDetails(j === undefined ? -1 : j); },
    view: function () { return { scale: view.s, x: view.tx, y: view.ty }; }
  };
  window.sharkGraph = api;
  document.body.setAttribute("data-rendered", "1");
})();
