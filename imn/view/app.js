// The attribution viewer: reads the JSON written by imn.view.page and draws one ECG at a
// time with plotly.js. Arrays are decoded as imn.view.encode specifies.
(function () {
  "use strict";
  const scriptStartMs = performance.now();
  const DATA = JSON.parse(document.getElementById("imn-data").textContent);
  const dataParsedMs = performance.now();
  const LEADS = DATA.leads;
  const MU = DATA.mulaw.mu, LEVELS = DATA.mulaw.levels, UNDEFINED = DATA.mulaw.undefined;
  const MM_PER_S = 25, MM_PER_MV = 10;
  const MARGIN = { l: 34, r: 16, t: 64, b: 36 };
  const COLUMN_GAP = 26, ROW_GAP = 3, STRIP_PX = 26;
  // xrange: the zoomed time window, kept when the reader switches ECG or method.
  const state = { run: 0, ecg: 0, method: null, weights: true, limit: 100, xrange: null, width: 0 };
  const decoded = new Map();
  const $ = (id) => document.getElementById(id);

  function bytes(text) {
    const binary = atob(text);
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  }

  // mu-law codes -> values (NaN for the undefined code), time-major (T, 12).
  function decodeMulaw(encoded) {
    const codes = new Int8Array(bytes(encoded.q).buffer);
    const out = new Float64Array(codes.length);
    const step = Math.log1p(MU) / LEVELS;
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      out[i] = c === UNDEFINED ? NaN : Math.sign(c) * encoded.peak * Math.expm1(Math.abs(c) * step) / MU;
    }
    return out;
  }

  // little-endian int16 in 1/1000 units -> values, time-major (T, 12).
  function decodeSignal(text) {
    const raw = bytes(text);
    const view = new DataView(raw.buffer);
    const out = new Float64Array(raw.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = view.getInt16(2 * i, true) / 1000;
    return out;
  }

  function memo(key, make) {
    if (!decoded.has(key)) decoded.set(key, make());
    return decoded.get(key);
  }

  function column(values, lead) {
    const n = values.length / 12, out = new Array(n);
    for (let t = 0; t < n; t++) out[t] = values[t * 12 + lead];
    return out;
  }

  function times(n, rate) {
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = (i + 0.5) / rate;
    return out;
  }

  function fmt(p) { return p === null || p === undefined ? "n/a" : p.toFixed(3); }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
  }

  // The colour limit: max |a| or a percentile of |a| over the finite values.
  function limitOf(values, peak) {
    if (state.limit >= 100) return peak || 1;
    const finite = Array.from(values).filter(Number.isFinite).map(Math.abs).sort((a, b) => a - b);
    if (!finite.length) return 1;
    const value = finite[Math.min(finite.length - 1, Math.floor(finite.length * state.limit / 100))];
    return value > 0 ? value : peak || 1;
  }

  function run() { return DATA.runs[state.run]; }
  function ecg() { return run().ecgs[state.ecg]; }

  function ecgLabel(e) {
    let text = `ECG ${e.id} · true ${e.true} · predicted ${e.predicted} (p ${fmt(e.p_predicted)})`;
    if (e.explained !== e.predicted) text += ` · explained ${e.explained} (p ${fmt(e.p_explained)})`;
    return text;
  }

  function fillRuns() {
    const select = $("run-select");
    DATA.runs.forEach((r, i) => select.add(new Option(`${r.name} (${r.ecgs.length} ECGs)`, String(i))));
    $("run-control").hidden = DATA.runs.length < 2;
  }

  function fillEcgs() {
    const select = $("ecg-select");
    select.innerHTML = "";
    run().ecgs.forEach((e, i) => select.add(new Option(ecgLabel(e), String(i))));
    select.value = String(state.ecg);
  }

  function fillMethods() {
    const box = $("method-switcher");
    box.querySelectorAll("label").forEach((node) => node.remove());
    const methods = Object.keys(run().methods).filter((m) => m in ecg().maps);
    if (!methods.includes(state.method)) state.method = methods[0];
    for (const method of methods) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "method";
      input.value = method;
      input.checked = method === state.method;
      input.addEventListener("change", () => { state.method = method; render(); });
      label.append(input, " " + run().methods[method].label);
      box.append(label);
    }
    $("weights-control").hidden = !(state.method === "imn" && ecg().weights);
  }

  // --------------------------------------------------------------------------- leads figure

  function panels(sideBySide) {
    const out = [];
    for (let lead = 0; lead < 12; lead++) {
      if (sideBySide) {
        out.push({ lead, col: 0, row: lead, layer: "map" }, { lead, col: 1, row: lead, layer: "weights" });
      } else {
        out.push({ lead, col: lead < 6 ? 0 : 1, row: lead % 6, layer: "map" });
      }
    }
    return out;
  }

  function rowSpan(signal, units) {
    let span = 0;
    const medians = [];
    for (let lead = 0; lead < 12; lead++) {
      const values = column(signal, lead);
      const sorted = values.slice().sort((a, b) => a - b);
      medians.push(sorted[Math.floor(sorted.length / 2)]);
      span = Math.max(span, sorted[sorted.length - 1] - sorted[0]);
    }
    const step = units === "mV" ? 0.5 : 1;
    return { span: Math.max(units === "mV" ? 2 : 4, Math.ceil((span * 1.1) / step) * step), medians };
  }

  // The paper: 1 mm boxes (0.04 s x 0.1 mV) and 5 mm boxes (0.2 s x 0.5 mV) at 25 mm/s and
  // 10 mm/mV, as two path shapes per panel in data coordinates, under the traces: one SVG path
  // per panel instead of one element per grid line (3,400 instead of 9,800 SVG elements on
  // IMN's 24 panels; drawing them took about a quarter less time in headless Chromium).
  function gridShapes(suffix, yRange, seconds) {
    const minor = [], major = [];
    const [lo, hi] = yRange;
    for (let i = 0; i <= Math.round(seconds / 0.04); i++) {
      const t = (i * 0.04).toFixed(3);
      (i % 5 === 0 ? major : minor).push(`M${t},${lo}L${t},${hi}`);
    }
    for (let j = Math.ceil(lo * 10); j <= Math.floor(hi * 10); j++) {
      const v = (j / 10).toFixed(2);
      (j % 5 === 0 ? major : minor).push(`M0,${v}L${seconds},${v}`);
    }
    const shape = (parts, color) => ({ type: "path", path: parts.join(""), xref: "x" + suffix, yref: "y" + suffix,
      line: { color, width: 1 }, layer: "below" });
    return [shape(minor, DATA.grid.minor), shape(major, DATA.grid.major)];
  }

  function colorAxis(kind, limit, title, x, len) {
    return {
      colorscale: DATA.colorscales[kind],
      cmin: kind === "signed" ? -limit : 0,
      cmax: limit,
      colorbar: {
        orientation: "h", x, xanchor: "center", y: 1, yanchor: "bottom", yref: "paper", ypad: 26,
        len, lenmode: "fraction", thickness: 10, outlinewidth: 0, exponentformat: "e",
        title: { text: title, side: "top", font: { size: 12 } }, tickfont: { size: 10 },
      },
    };
  }

  function leadsFigure(width) {
    const r = run(), e = ecg(), method = state.method, traits = r.methods[method];
    const sideBySide = method === "imn" && !!e.weights && state.weights;
    const signal = memo(`s${state.run}/${state.ecg}`, () => decodeSignal(e.signal));
    const layers = {
      map: memo(`m${state.run}/${state.ecg}/${method}`, () => decodeMulaw(e.maps[method])),
      weights: sideBySide ? memo(`w${state.run}/${state.ecg}`, () => decodeMulaw(e.weights)) : null,
    };
    const peaks = { map: e.maps[method].peak, weights: sideBySide ? e.weights.peak : 0 };
    const limits = { map: limitOf(layers.map, peaks.map), weights: sideBySide ? limitOf(layers.weights, peaks.weights) : 1 };
    const strip = traits.time_only;
    const list = panels(sideBySide);
    const rows = sideBySide ? 12 : 6;
    const { span, medians } = rowSpan(signal, r.units);
    const panelWidth = (width - MARGIN.l - MARGIN.r - COLUMN_GAP) / 2;
    const pxPerSecond = panelWidth / r.seconds;
    const rowPx = span * pxPerSecond * MM_PER_MV / MM_PER_S;
    const stripRows = strip ? 1 : 0;
    const plotHeight = stripRows * (STRIP_PX + ROW_GAP) + rows * (rowPx + ROW_GAP);
    const height = plotHeight + MARGIN.t + MARGIN.b;
    const plotWidth = width - MARGIN.l - MARGIN.r;
    const colX = (col) => [col * (panelWidth + COLUMN_GAP) / plotWidth, (col * (panelWidth + COLUMN_GAP) + panelWidth) / plotWidth];
    const rowY = (top, px) => [1 - (top + px) / plotHeight, 1 - top / plotHeight];

    const signalTimes = times(signal.length / 12, r.signal_rate);
    const overlayTimes = times(layers.map.length / 12, r.overlay_rate);
    const traces = [], shapes = [], annotations = [];
    const layout = {
      width, height, margin: MARGIN, showlegend: false, dragmode: "zoom", hovermode: "closest",
      plot_bgcolor: "#fff", paper_bgcolor: "#fff", shapes, annotations,
      coloraxis: colorAxis(traits.kind, limits.map,
        sideBySide ? "W · x (contribution to the explained logit)" : `${traits.label}${traits.time_only ? " (one map for all leads)" : ""}`,
        sideBySide ? colX(0).reduce((a, b) => a + b) / 2 : 0.5, sideBySide ? 0.4 : 0.5),
      hoverlabel: { font: { size: 11 } },
    };
    if (sideBySide) {
      layout.coloraxis2 = colorAxis("signed", limits.weights, "W (generated weights, per normalised input unit)",
        colX(1).reduce((a, b) => a + b) / 2, 0.4);
    }
    let axis = 0;
    // Tick labels every second; the paper's grid is drawn by gridShapes, not by the axes.
    const gridX = (showLabels) => ({
      range: state.xrange ? state.xrange.slice() : [0, r.seconds], dtick: 0.2, tick0: 0, ticklabelstep: 5,
      ticksuffix: " s", showticklabels: showLabels, showgrid: false, zeroline: false, ticks: "",
      tickfont: { size: 10 },
    });
    const addAxes = (col, yDomain, yRange, showLabels, grid) => {
      axis += 1;
      const suffix = axis === 1 ? "" : String(axis);
      const x = gridX(showLabels);
      x.domain = colX(col);
      x.anchor = "y" + suffix;
      if (axis > 1) x.matches = "x";
      if (!grid) { x.showgrid = false; x.minor = { showgrid: false }; }
      layout["xaxis" + suffix] = x;
      layout["yaxis" + suffix] = grid
        ? { domain: yDomain, anchor: "x" + suffix, range: yRange, fixedrange: true, showticklabels: false,
            ticks: "", zeroline: false, showgrid: false }
        : { domain: yDomain, anchor: "x" + suffix, range: [0, 1], fixedrange: true, visible: false };
      if (grid) shapes.push(...gridShapes(suffix, yRange, r.seconds));
      return suffix;
    };
    const overlayAt = (values, lead) => {
      const out = column(values, lead);
      return signalTimes.map((t) => out[Math.min(out.length - 1, Math.floor(t * r.overlay_rate))]);
    };
    const ampAt = (lead) => {
      const amp = column(signal, lead);
      return overlayTimes.map((t) => amp[Math.min(amp.length - 1, Math.floor(t * r.signal_rate))]);
    };

    if (strip) {
      for (const col of [0, 1]) {
        const suffix = addAxes(col, rowY(0, STRIP_PX), [0, 1], false, false);
        traces.push({
          type: "heatmap", x: overlayTimes, y: [0, 1], z: [column(layers.map, 0)], coloraxis: "coloraxis",
          xaxis: "x" + suffix, yaxis: "y" + suffix, zsmooth: false, hoverongaps: false,
          hovertemplate: `${escapeHtml(traits.label)}<br>%{x:.2f} s: %{z:.4g}<extra></extra>`,
          meta: { role: "strip" },
        });
        annotations.push({ xref: `x${suffix} domain`, yref: `y${suffix} domain`, x: 0.003, y: 0.5, xanchor: "left",
          yanchor: "middle", showarrow: false, text: "time only", font: { size: 10 }, bgcolor: "rgba(255,255,255,0.7)" });
      }
    }
    const top0 = stripRows * (STRIP_PX + ROW_GAP);
    const unit = r.units === "mV" ? "mV" : "(normalised)";
    for (const p of list) {
      const lead = p.lead, yDomain = rowY(top0 + p.row * (rowPx + ROW_GAP), rowPx);
      const lo = medians[lead] - span / 2, hi = medians[lead] + span / 2;
      const bottom = p.row === rows - 1;
      const suffix = addAxes(p.col, yDomain, [lo, hi], bottom, true);
      const values = layers[p.layer];
      const layerLabel = p.layer === "weights" ? "W" : traits.label;
      const showOverlay = p.layer === "weights" || !traits.time_only;
      if (showOverlay) {
        traces.push({
          type: "heatmap", x: overlayTimes, y: [lo, hi], z: [column(values, lead)], customdata: [ampAt(lead)],
          coloraxis: p.layer === "weights" ? "coloraxis2" : "coloraxis", xaxis: "x" + suffix, yaxis: "y" + suffix,
          zsmooth: false, hoverongaps: false,
          hovertemplate: `${LEADS[lead]} · %{x:.2f} s · %{customdata:.3f} ${unit}<br>${escapeHtml(layerLabel)}: %{z:.4g}<extra></extra>`,
          meta: { role: "overlay", lead },
        });
      }
      traces.push({
        type: "scatter", mode: "lines", x: signalTimes, y: column(signal, lead),
        customdata: overlayAt(values, traits.time_only && p.layer === "map" ? 0 : lead),
        line: { color: "#111", width: 1 }, xaxis: "x" + suffix, yaxis: "y" + suffix, name: LEADS[lead],
        hovertemplate: `${LEADS[lead]} · %{x:.3f} s · %{y:.3f} ${unit}<br>${escapeHtml(layerLabel)}: %{customdata:.4g}<extra></extra>`,
        meta: { role: "lead", lead },
      });
      annotations.push({ xref: `x${suffix} domain`, yref: `y${suffix} domain`, x: 0.003, y: 0.97, xanchor: "left",
        yanchor: "top", showarrow: false, text: `<b>${LEADS[lead]}</b>`, font: { size: 11 }, bgcolor: "rgba(255,255,255,0.75)" });
      if (e.mask && p.layer === "map") {
        for (const [start, stop] of e.mask[lead]) {
          shapes.push({ type: "rect", xref: "x" + suffix, yref: `y${suffix} domain`, x0: start, x1: stop, y0: 0, y1: 0.09,
            fillcolor: DATA.mask_color, opacity: 0.9, line: { width: 0 }, layer: "above" });
        }
      }
    }
    return { traces, layout };
  }

  // --------------------------------------------------------------------------- curves

  function auc(values) {
    let sum = 0;
    for (let i = 1; i < values.length; i++) sum += (values[i] + values[i - 1]) / 2;
    return sum / (values.length - 1);
  }

  function curvesFigure() {
    const r = run(), e = ecg(), method = state.method;
    const traces = [];
    const add = (m, dash, colorDel, colorIns, suffix) => {
      const c = e.curves[m];
      if (!c) return;
      const x = c.deletion.map((_, i) => i / (c.deletion.length - 1));
      traces.push({ x, y: c.deletion, mode: "lines", name: `deletion${suffix} (AUC ${auc(c.deletion).toFixed(3)})`,
        line: { color: colorDel, dash, width: 2 }, meta: { role: "curve" } });
      traces.push({ x, y: c.insertion, mode: "lines", name: `insertion${suffix} (AUC ${auc(c.insertion).toFixed(3)})`,
        line: { color: colorIns, dash, width: 2 }, meta: { role: "curve" } });
    };
    add(method, "solid", "#D55E00", "#0072B2", "");
    if (method !== "random") add("random", "dot", "#E69F00", "#56B4E9", ", random");
    const unit = r.curve_unit ? `${r.curve_unit}es` : "features";
    const layout = {
      margin: { l: 48, r: 8, t: 28, b: 40 }, height: 230,
      title: { text: traces.length ? `${r.methods[method].label}: deletion and insertion` : "no faithfulness curves for this ECG and method", font: { size: 13 } },
      xaxis: { title: { text: `fraction of ${unit} deleted / inserted, most relevant first`, font: { size: 11 } }, range: [0, 1] },
      yaxis: { title: { text: `p(${e.explained})`, font: { size: 11 } }, range: [0, 1.02] },
      legend: { font: { size: 10 }, x: 1, xanchor: "right", y: 1, bgcolor: "rgba(255,255,255,0.7)" },
    };
    return { traces, layout };
  }

  // --------------------------------------------------------------------------- text

  function info() {
    const r = run(), e = ecg(), traits = r.methods[state.method];
    const colour = traits.kind === "signed"
      ? `red supports <b>${escapeHtml(e.explained)}</b>, blue speaks against it (diverging, centred at 0)`
      : "darker is larger (sequential, never negative)";
    const lines = [
      `<span class="key">model</span> ${escapeHtml(r.model)} · <span class="key">task</span> ${escapeHtml(r.task)}`,
      `<span class="key">ECG</span> ${e.id} · <span class="key">true label</span> ${escapeHtml(e.true)}`,
      `<span class="key">predicted</span> ${escapeHtml(e.predicted)} (p ${fmt(e.p_predicted)}) · <span class="key">explained</span> ${escapeHtml(e.explained)} (p ${fmt(e.p_explained)})`,
      `<span class="key">colour</span> ${escapeHtml(traits.label)}: ${colour}${traits.time_only ? "; one map for all leads, drawn as a time-only strip" : ""}`,
    ];
    if (e.mask) lines.push(`<span class="swatch" style="background:${DATA.mask_color}"></span> planted evidence of ${escapeHtml(e.explained)} (ground truth)`);
    if (r.units === "mV") lines.push("<span class=\"key\">paper</span> 25 mm/s, 10 mm/mV when the page opens; small box 0.04 s × 0.1 mV, large box 0.2 s × 0.5 mV");
    else lines.push(`<span class="note">${escapeHtml(r.units_note)}</span>`);
    $("ecg-info").innerHTML = lines.join("<br>");
  }

  function notes() {
    const items = [
      `Generated ${escapeHtml(DATA.generated)} by <code>imn view</code>; every script and all data are inside this file.`,
      `Attributions and W are averaged into bins of 1/${DATA.runs[0].overlay_rate} s and stored as 8-bit μ-law codes (μ = ${DATA.mulaw.mu}) of value / peak per ECG and map: a shown value is off by at most ${(100 * DATA.mulaw.relative_error).toFixed(1)} % of (|value| + peak/${DATA.mulaw.mu}).`,
      `Signals are averaged into bins of 1/${DATA.runs[0].signal_rate} s and stored to 1 μV (0.001 normalised units).`,
      "IMN's W is the map of the explained logit, recovered as (W · x) / x from the saved W · x and input x (exact up to float rounding; undefined where x = 0). Both are functions of this ECG.",
      `Colours: signed maps ${escapeHtml(DATA.colorscales.signed_name)} centred at 0, non-negative maps (Grad-CAM) white-started ${escapeHtml(DATA.colorscales.magnitude_name)}, opacity growing with |a|, as in the static figures; limits per ECG and map.`,
      "Deletion/insertion: the model re-run on the ECG with the most relevant features (lead × time patches) removed or inserted first; dotted: the random control on the same ECG.",
    ];
    for (const r of DATA.runs) {
      items.push(`${escapeHtml(r.name)}: ${r.ecgs.length} ECGs from <code>${escapeHtml(r.path)}</code>, ${r.rate} Hz${r.git ? `, trained at commit ${escapeHtml(r.git.slice(0, 10))}` : ""}${r.units_note ? ". " + escapeHtml(r.units_note) : ""}`);
    }
    $("notes").innerHTML = items.map((text) => `<li>${text}</li>`).join("");
  }

  // --------------------------------------------------------------------------- render

  const CONFIG = { displaylogo: false, responsive: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

  function render() {
    fillMethods();
    info();
    const width = Math.max(760, $("leads").clientWidth || document.body.clientWidth);
    state.width = width;
    const leads = leadsFigure(width);
    // The ECG first; the curves after it has been drawn.
    return Plotly.react("leads", leads.traces, leads.layout, CONFIG).then(() => {
      const drawn = performance.now();
      const curves = curvesFigure();
      return Plotly.react("curves", curves.traces, curves.layout, { ...CONFIG, displayModeBar: false })
        .then(() => {
          document.body.dataset.method = state.method;
          document.body.dataset.ecg = String(ecg().id);
          return drawn;
        });
    });
  }

  function showError(error) {
    const banner = $("error");
    banner.hidden = false;
    banner.textContent = "The viewer failed: " + (error && error.message ? error.message : error);
    throw error;
  }

  function start() {
    $("title").textContent = DATA.title;
    fillRuns();
    fillEcgs();
    notes();
    $("run-select").addEventListener("change", (event) => {
      state.run = Number(event.target.value);
      state.ecg = 0;
      fillEcgs();
      render();
    });
    $("ecg-select").addEventListener("change", (event) => { state.ecg = Number(event.target.value); render(); });
    $("limit-select").addEventListener("change", (event) => { state.limit = Number(event.target.value); render(); });
    $("show-weights").addEventListener("change", (event) => { state.weights = event.target.checked; render(); });
    let pending = null;
    window.addEventListener("resize", () => {
      clearTimeout(pending);
      pending = setTimeout(() => { if ($("leads").clientWidth !== state.width) render(); }, 150);
    });
    render().then((drawn) => {
      $("leads").on("plotly_relayout", () => {
        const axis = $("leads").layout.xaxis;
        state.xrange = axis && !axis.autorange && axis.range ? axis.range.slice() : null;
      });
      // Milliseconds from navigation start to the first drawn ECG (read by the browser test).
      document.body.dataset.firstRenderMs = drawn.toFixed(0);
      document.body.dataset.scriptStartMs = scriptStartMs.toFixed(0);
      document.body.dataset.dataParsedMs = dataParsedMs.toFixed(0);
      document.body.dataset.ready = "1";
    }).catch(showError);
  }

  start();
})();
