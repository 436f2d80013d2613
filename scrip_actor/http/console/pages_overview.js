// The live overview: the same figures Prometheus scrapes from /metrics, parsed here from its text format.
import { get } from "./api.js";
import { sparkline } from "./chart.js";
import { el, show } from "./dom.js";

// Prometheus text → {name: value}, summing a family's labelled series (comments and blank lines skipped).
export function parseMetrics(textValue) {
  const totals = {};
  for (const line of textValue.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    totals[match[1]] = (totals[match[1]] ?? 0) + Number(match[3]);
  }
  return totals;
}

const FIGURES = [
  ["events/s", "rate"],
  ["events completed", "scrip_engine_events_completed_total"],
  ["events failed", "scrip_engine_events_failed_total"],
  ["backlog: events in flight", "scrip_engine_events_inflight"],
  ["backlog: records to commit", "scrip_engine_writer_backlog_records"],
  ["refused (overload)", "scrip_engine_events_refused_overload_total"],
  ["journal sequence", "scrip_engine_journal_sequence"],
  ["participants in memory", "scrip_engine_participants_cached"],
];

let timer = null;

export async function overviewPage(view) {
  clearInterval(timer);
  const samples = [];
  const rates = [];
  const refresh = async () => {
    if (!view.isConnected || !location.hash.startsWith("#/overview")) return clearInterval(timer);
    const totals = parseMetrics(await get("/metrics"));
    const processed = (totals.scrip_engine_events_completed_total ?? 0) + (totals.scrip_engine_events_failed_total ?? 0);
    samples.push([performance.now() / 1000, processed]);
    if (samples.length > 1) {
      const [[t0, n0], [t1, n1]] = samples.slice(-2);
      rates.push((n1 - n0) / Math.max(t1 - t0, 1e-3));
    }
    totals.rate = rates.length ? rates[rates.length - 1] : 0;
    const cards = FIGURES.map(([label, name]) =>
      el("div", { class: "card" }, el("div", { class: "muted" }, label),
        el("div", { class: "figure", "data-metric": name }, Number.isInteger(totals[name]) ? String(totals[name]) : (totals[name] ?? 0).toFixed(1))));
    show(view, el("h1", {}, "Overview"), el("p", { class: "muted" }, "From /metrics, every 2 s."),
      el("div", { class: "cards" }, cards), el("h2", {}, "Events per second"), sparkline(rates.slice(-60), "events/s"));
  };
  await refresh();
  timer = setInterval(() => refresh().catch(() => clearInterval(timer)), 2000);
}
