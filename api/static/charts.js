// Small inline-SVG line charts: no library, no build step.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(name, attrs) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

function formatTick(value) {
  if (value >= 1000) return (value / 1000).toFixed(1) + "k";
  if (value >= 10 || value === 0) return value.toFixed(0);
  if (value >= 0.01) return value.toFixed(2);
  return value.toExponential(0);
}

// points: [{t: Date, v: number|null}] in time order; nulls break the line.
function drawLineChart(svg, points, label) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const width = svg.clientWidth || 300, height = svg.clientHeight || 120;
  const pad = { left: 34, right: 6, top: 8, bottom: 16 };
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const values = points.map((p) => p.v).filter((v) => v !== null);
  const max = Math.max(1e-9, ...values);
  const t0 = points.length ? points[0].t.getTime() : 0;
  const t1 = points.length ? points[points.length - 1].t.getTime() : 1;
  const x = (t) => pad.left + ((t - t0) / Math.max(1, t1 - t0)) * (width - pad.left - pad.right);
  const y = (v) => pad.top + (1 - v / max) * (height - pad.top - pad.bottom);
  svg.appendChild(svgEl("line", { class: "axis", x1: pad.left, x2: width - pad.right,
    y1: height - pad.bottom, y2: height - pad.bottom }));
  svg.appendChild(svgEl("line", { class: "axis", x1: pad.left, x2: pad.left,
    y1: pad.top, y2: height - pad.bottom }));
  const top = svgEl("text", { x: 2, y: pad.top + 8 });
  top.textContent = values.length ? formatTick(max) : "";
  svg.appendChild(top);
  const zero = svgEl("text", { x: 2, y: height - pad.bottom });
  zero.textContent = "0";
  svg.appendChild(zero);
  if (points.length) {
    const fmt = (d) => d.toTimeString().slice(0, 5);
    const left = svgEl("text", { x: pad.left, y: height - 3 });
    left.textContent = fmt(points[0].t);
    const right = svgEl("text", { x: width - pad.right, y: height - 3, "text-anchor": "end" });
    right.textContent = fmt(points[points.length - 1].t);
    svg.append(left, right);
  }
  let segment = [];
  const flush = () => {
    if (segment.length > 1) {
      const d = segment.map(([px, py], i) => `${i ? "L" : "M"}${px.toFixed(1)},${py.toFixed(1)}`).join("");
      const base = height - pad.bottom;
      const area = `${d}L${segment[segment.length - 1][0].toFixed(1)},${base}L${segment[0][0].toFixed(1)},${base}Z`;
      svg.appendChild(svgEl("path", { class: "area", d: area }));
      svg.appendChild(svgEl("path", { class: "line", d }));
    } else if (segment.length === 1) {
      svg.appendChild(svgEl("circle", { cx: segment[0][0], cy: segment[0][1], r: 2.5, fill: "#4fb3ff" }));
    }
    segment = [];
  };
  for (const p of points) {
    if (p.v === null) flush();
    else segment.push([x(p.t.getTime()), y(p.v)]);
  }
  flush();
}

window.sluiceCharts = { drawLineChart };
