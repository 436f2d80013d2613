// Hand-drawn SVG charts: no library, every label set as text.
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes, label = undefined) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (label !== undefined) node.textContent = label;
  return node;
}

// Grouped bars: for each {label, proposed, live}, the proposed credit (dark) beside the live one (light).
export function barChart(rows) {
  const width = 640, rowHeight = 34, left = 170, top = 24;
  const height = top + rows.length * rowHeight + 10;
  const largest = Math.max(1, ...rows.flatMap((row) => [row.proposed, row.live]));
  const chart = svg("svg", { class: "chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  chart.append(svg("text", { x: left, y: 14 }, "credited: proposed (dark) vs live (light)"));
  rows.forEach((row, index) => {
    const y = top + index * rowHeight;
    const scale = (value) => ((width - left - 80) * value) / largest;
    chart.append(
      svg("text", { x: 6, y: y + 18 }, row.label.length > 24 ? `${row.label.slice(0, 23)}…` : row.label),
      svg("rect", { x: left, y, width: scale(row.proposed), height: 13, fill: "#1f3a5f" }),
      svg("rect", { x: left, y: y + 15, width: scale(row.live), height: 13, fill: "#9db7d8" }),
      svg("text", { x: left + scale(row.proposed) + 4, y: y + 11 }, String(row.proposed)),
      svg("text", { x: left + scale(row.live) + 4, y: y + 26 }, String(row.live)),
    );
  });
  return chart;
}

// A line of the last samples (e.g. events/s), newest on the right.
export function sparkline(values, label) {
  const width = 320, height = 70;
  const largest = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const points = values.map((value, index) => `${index * step},${height - 4 - ((height - 18) * value) / largest}`).join(" ");
  const chart = svg("svg", { class: "chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  chart.append(svg("text", { x: 4, y: 12 }, `${label} (max ${largest.toFixed(1)})`),
    svg("polyline", { points, fill: "none", stroke: "#1f3a5f", "stroke-width": 2 }));
  return chart;
}
