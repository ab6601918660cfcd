/// The page's script and style, served by ferry itself (no CDN; the Content-Security-Policy
/// allows only these).
enum Assets {
    static let script = #"""
    "use strict";
    // Live figures: the event stream sends every pipeline once a second; each element with
    // data-path="pipeline/field" or "pipeline/sinks|tables|snapshots/name/field" is refreshed,
    // and each canvas with data-chart="pipeline" draws the last minute of changes/s (kept by ferry).
    const keys = { sinks: "name", tables: "name", snapshots: "table" };

    function lookup(pipelines, path) {
      const parts = path.split("/");
      let value = pipelines.find(p => p.name === parts[0]);
      let i = 1;
      while (value !== undefined && i < parts.length) {
        if (keys[parts[i]] && i + 1 < parts.length) {
          const list = value[parts[i]] || [];
          value = list.find(item => item[keys[parts[i]]] === parts[i + 1]);
          i += 2;
        } else {
          value = value[parts[i]];
          i += 1;
        }
      }
      return value;
    }

    function format(value, kind) {
      if (value === undefined || value === null) return "—";
      switch (kind) {
        case "rate": return Math.round(value).toLocaleString("en");
        case "count": return Number(value).toLocaleString("en");
        case "seconds": return value < 10 ? value.toFixed(1) + " s" : Math.round(value).toLocaleString("en") + " s";
        case "bytes":
          if (value >= 1 << 20) return (value / (1 << 20)).toFixed(1) + " MiB";
          if (value >= 1 << 10) return (value / (1 << 10)).toFixed(1) + " KiB";
          return value + " B";
        default: return String(value);
      }
    }

    function draw(canvas, samples) {
      const scale = window.devicePixelRatio || 1;
      const width = canvas.clientWidth, height = canvas.clientHeight;
      canvas.width = width * scale;
      canvas.height = height * scale;
      const context = canvas.getContext("2d");
      context.scale(scale, scale);
      const top = Math.max(1, ...samples);
      const step = width / 59;
      const point = (sample, index) => [width - (samples.length - 1 - index) * step, height - 2 - (sample / top) * (height - 16)];
      context.beginPath();
      samples.forEach((sample, index) => {
        const [x, y] = point(sample, index);
        index === 0 ? context.moveTo(x, y) : context.lineTo(x, y);
      });
      context.strokeStyle = "#2563eb";
      context.lineWidth = 1.5;
      context.stroke();
      const [firstX] = point(samples[0], 0);
      context.lineTo(width, height);
      context.lineTo(firstX, height);
      context.closePath();
      context.fillStyle = "rgba(37, 99, 235, 0.12)";
      context.fill();
      context.fillStyle = "#64748b";
      context.font = "10px sans-serif";
      context.fillText("max " + Math.round(top).toLocaleString("en") + "/s", 2, 10);
    }

    function update(pipelines) {
      for (const element of document.querySelectorAll("[data-path]")) {
        const value = lookup(pipelines, element.dataset.path);
        if (element.dataset.format === "progress") {
          if (typeof value === "number") element.value = value;
        } else {
          element.textContent = format(value, element.dataset.format);
        }
        if (element.classList.contains("state")) element.dataset.state = value || "";
      }
      for (const pipeline of pipelines) offerActions(pipeline.name, pipeline.state);
      for (const pipeline of pipelines) {
        const samples = pipeline.events_per_second_history.length > 0 ? pipeline.events_per_second_history : [0];
        for (const canvas of document.querySelectorAll("canvas[data-chart]")) {
          if (canvas.dataset.chart === pipeline.name) draw(canvas, samples);
        }
      }
      document.body.dataset.updated = String(Date.now());
    }

    // Pause only what runs, resume only what is paused.
    function offerActions(pipeline, state) {
      for (const bar of document.querySelectorAll(".actions")) {
        if (bar.dataset.pipeline !== pipeline) continue;
        bar.querySelector('[data-action="pause"]').disabled = state !== "running";
        bar.querySelector('[data-action="resume"]').disabled = state !== "paused";
      }
    }

    function act(pipeline, action, body, result) {
      result.textContent = "…";
      fetch("/api/v1/pipelines/" + encodeURIComponent(pipeline) + "/" + action, {
        method: "POST",
        headers: { "X-Ferry-Request": "1", "Content-Type": "application/json" },
        body: body ? JSON.stringify(body) : undefined,
        credentials: "same-origin",
      }).then(response => response.json().then(json => {
        result.textContent = response.ok ? action + ": done" : (json.error ? json.error.message : response.statusText);
      })).catch(error => { result.textContent = String(error); });
    }

    document.addEventListener("DOMContentLoaded", () => {
      for (const element of document.querySelectorAll(".state")) element.dataset.state = element.textContent.trim();
      for (const bar of document.querySelectorAll(".actions")) {
        const heading = document.querySelector('.state[data-path="' + CSS.escape(bar.dataset.pipeline) + '/state"]');
        if (heading) offerActions(bar.dataset.pipeline, heading.textContent.trim());
        const result = bar.querySelector(".result");
        for (const button of bar.querySelectorAll("button[data-action]")) {
          button.addEventListener("click", () => act(bar.dataset.pipeline, button.dataset.action, null, result));
        }
        const form = bar.querySelector("form.snapshot");
        form.addEventListener("submit", event => {
          event.preventDefault();
          const tables = form.elements.tables.value.split(",").map(t => t.trim()).filter(t => t.length > 0);
          act(bar.dataset.pipeline, "snapshot", { tables }, result);
        });
      }
      const events = new EventSource("/api/v1/events");
      events.addEventListener("pipelines", message => update(JSON.parse(message.data).pipelines));
    });
    """#

    static let style = """
    :root { --ink: #0f172a; --quiet: #64748b; --line: #e2e8f0; --accent: #2563eb; }
    * { box-sizing: border-box; }
    body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #f8fafc; }
    header { display: flex; gap: 1rem; align-items: center; padding: .6rem 1.5rem; background: var(--ink); color: white; }
    header .brand { color: white; font-weight: 600; text-decoration: none; font-size: 1.1rem; }
    header .who { margin-left: auto; color: #cbd5e1; }
    header form { margin: 0; }
    button.link { background: none; border: none; color: #cbd5e1; cursor: pointer; padding: 0; }
    main { max-width: 1100px; margin: 1.5rem auto; padding: 0 1.5rem; }
    h1 { font-size: 1.5rem; margin: 0 0 1rem; display: flex; align-items: center; gap: .75rem; }
    h2 { font-size: 1.1rem; margin: 1.75rem 0 .5rem; }
    h2 small, p.big small { color: var(--quiet); font-weight: normal; }
    table { width: 100%; border-collapse: collapse; background: white; border: 1px solid var(--line); }
    th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); vertical-align: middle; }
    th { font-weight: 600; color: var(--quiet); font-size: .85rem; }
    .num { text-align: right; font-variant-numeric: tabular-nums; }
    .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: .85rem; }
    .quiet { color: var(--quiet); }
    a { color: var(--accent); }
    .state { display: inline-block; padding: .1rem .55rem; border-radius: 999px; font-size: .8rem; font-weight: 600; background: #e2e8f0; }
    .state[data-state="running"] { background: #dcfce7; color: #166534; }
    .state[data-state="paused"] { background: #fef9c3; color: #854d0e; }
    .state[data-state="failed"] { background: #fee2e2; color: #991b1b; }
    .figures { display: grid; grid-template-columns: repeat(4, 1fr); gap: .75rem; }
    .figures > div { background: white; border: 1px solid var(--line); border-radius: 6px; padding: .6rem .8rem; }
    .figures .wide { grid-column: 1 / -1; }
    .figures h3 { margin: 0; font-size: .8rem; color: var(--quiet); font-weight: 600; }
    .figures .big { margin: .2rem 0 0; font-size: 1.5rem; font-variant-numeric: tabular-nums; }
    canvas.chart { width: 100%; height: 80px; display: block; }
    canvas.spark { width: 180px; height: 36px; display: block; }
    .actions { display: flex; gap: .5rem; align-items: center; margin-bottom: 1rem; flex-wrap: wrap; }
    .actions form { display: flex; gap: .4rem; margin: 0; }
    .actions input { width: 22rem; }
    .actions .result { color: var(--quiet); }
    button { font: inherit; padding: .3rem .8rem; border: 1px solid #cbd5e1; border-radius: 4px; background: white; cursor: pointer; }
    button:hover { border-color: var(--accent); }
    button:disabled { color: #94a3b8; border-color: #e2e8f0; cursor: default; }
    input { font: inherit; padding: .3rem .5rem; border: 1px solid #cbd5e1; border-radius: 4px; }
    progress { width: 10rem; }
    .errors td:last-child { max-width: 36rem; word-break: break-word; }
    .login { max-width: 30rem; margin: 4rem auto; background: white; border: 1px solid var(--line); border-radius: 6px; padding: 1.5rem; }
    .login form { display: flex; gap: .5rem; }
    .login input { flex: 1; }
    .error { color: #991b1b; }
    td.warn { color: #92400e; background: #fef3c7; }
    """
}
