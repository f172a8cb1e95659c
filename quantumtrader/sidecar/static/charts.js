// Plain SVG charts: a sparkline per quote and a small multi-series line chart (log scale) for latency.

const SVG_NS = "http://www.w3.org/2000/svg";

export function svgEl(name, attrs = {}) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function polylinePoints(values, width, height, lo, hi, pad = 1) {
  const span = hi - lo || 1;
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  return values
    .map((v, i) => `${(i * step).toFixed(1)},${(pad + (height - 2 * pad) * (1 - (v - lo) / span)).toFixed(1)}`)
    .join(" ");
}

/** Draw `values` into `svg` (made once per row; only the points change afterwards). */
export function sparkline(svg, values) {
  const width = 100;
  const height = 24;
  let line = svg.firstChild;
  if (!line) {
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("preserveAspectRatio", "none");
    line = svgEl("polyline", { fill: "none", "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" });
    svg.appendChild(line);
  }
  if (values.length < 2) {
    line.setAttribute("points", "");
    return;
  }
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  line.setAttribute("points", polylinePoints(values, width, height, lo, hi));
  line.setAttribute("class", values[values.length - 1] >= values[0] ? "spark-up" : "spark-down");
}

export const SERIES_COLORS = ["#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#ba68c8", "#fff176", "#90a4ae", "#f06292"];

/**
 * Lines over time on a log10 y axis (latency spans microseconds to milliseconds).
 * @param {SVGSVGElement} svg  180 units high, as wide as it is shown
 * @param {{name: string, values: (number|null)[]}[]} series  equal-length, oldest first; null = no sample
 * @param {(v: number) => string} label  y-axis label of a value
 */
export function lineChart(svg, series, label) {
  // Drawn at the size it is shown, so the labels keep their size on a phone.
  const width = Math.max(240, Math.round(svg.getBoundingClientRect().width)) || 600;
  const height = 180;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const left = 56;
  const right = 4;
  const top = 6;
  const bottom = 6;
  svg.replaceChildren();
  const all = series.flatMap((s) => s.values).filter((v) => typeof v === "number" && v > 0);
  if (all.length === 0) {
    const t = svgEl("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "chart-note" });
    t.textContent = "waiting for samples";
    svg.appendChild(t);
    return;
  }
  const lo = Math.floor(Math.log10(Math.min(...all)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...all))));
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const y = (v) => top + plotH * (1 - (Math.log10(v) - lo) / (hi - lo));
  for (let e = lo; e <= hi; e += 1) {
    const gy = y(10 ** e);
    svg.appendChild(svgEl("line", { x1: left, x2: width - right, y1: gy, y2: gy, class: "chart-grid" }));
    const t = svgEl("text", { x: left - 6, y: gy + 4, "text-anchor": "end", class: "chart-label" });
    t.textContent = label(10 ** e);
    svg.appendChild(t);
  }
  series.forEach((s, i) => {
    const n = s.values.length;
    const step = n > 1 ? plotW / (n - 1) : 0;
    let d = "";
    let run = 0; // points in the current stretch; a lone point is drawn as a dot (zero-length line, round cap)
    const lift = () => {
      if (run === 1) d += "l0,0";
      run = 0;
    };
    s.values.forEach((v, j) => {
      if (typeof v !== "number" || v <= 0) {
        lift();
        return;
      }
      d += `${run ? "L" : "M"}${(left + j * step).toFixed(1)},${y(v).toFixed(1)}`;
      run += 1;
    });
    lift();
    if (d) {
      const path = svgEl("path", { d, fill: "none", stroke: SERIES_COLORS[i % SERIES_COLORS.length], "stroke-width": 2, "stroke-linecap": "round" });
      path.setAttribute("vector-effect", "non-scaling-stroke");
      svg.appendChild(path);
    }
  });
}
