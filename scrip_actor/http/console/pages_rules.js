// Rules: the list, and one rule's condition editor (validate, simulate), its versions, and backtests of a change.
import { get, post } from "./api.js";
import { barChart } from "./chart.js";
import { el, errorBox, fields, link, show, table, text } from "./dom.js";

export async function rulesPage(view, query) {
  const programId = query.get("program_id");
  const rules = (await get("/v1/rules", { program_id: programId, limit: 100 })).data;
  show(view, el("h1", {}, "Rules"), table(rules, [
    ["name", (rule) => link(`#/rules/${encodeURIComponent(rule.id)}`, rule.name)],
    ["order", (rule) => text(rule.order)], ["status", (rule) => rule.status],
    ["condition", (rule) => el("code", {}, rule.condition)], ["program_id", (rule) => rule.program_id],
  ]));
}

// A button that runs `action` and shows its result (or its error) in `out`.
function actionButton(label, id, out, action) {
  const button = el("button", { type: "button", id }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      show(out, await action());
    } catch (error) {
      show(out, errorBox(error));
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

function parseJson(textValue, what) {
  try {
    return JSON.parse(textValue);
  } catch (error) {
    throw new Error(`${what} is not valid JSON: ${error.message}`);
  }
}

export async function rulePage(view, ruleId) {
  const path = `/v1/rules/${encodeURIComponent(ruleId)}`;
  const [rule, history] = await Promise.all([get(path), get(`${path}/history`, { limit: 20 })]);
  const condition = el("textarea", { id: "condition", spellcheck: "false" }, rule.condition);
  const eventJson = el("textarea", { id: "simulate-event", spellcheck: "false" }, '{"type": "purchase", "amount": 120.0}');
  const stateJson = el("textarea", { id: "simulate-state", spellcheck: "false" }, '{"tags": [], "counters": {}, "attributes": {}}');
  const validateOut = el("div", { id: "validate-result" });
  const simulateOut = el("div", { id: "simulate-result" });
  const validate = actionButton("Validate", "validate", validateOut, async () => {
    const result = await post("/v1/rules/validate", { condition: condition.value });
    return el("div", { class: result.valid ? "ok" : "error" }, `${result.valid ? "valid" : "invalid"}: ${result.message}`);
  });
  const simulate = actionButton("Simulate", "simulate", simulateOut, async () => {
    const result = await post(`${path}/simulate`, {
      event: parseJson(eventJson.value, "the event"),
      participant_state: parseJson(stateJson.value, "the participant state"),
    });
    const outcome = result.evaluation;
    return [
      el("div", { class: outcome.matched ? "ok" : "error" },
        `${outcome.matched ? "matched" : "not matched"} (${outcome.status})${outcome.reason ? `: ${outcome.reason}` : ""}`),
      table(outcome.results ?? []),
    ];
  });
  show(
    view,
    el("h1", {}, `Rule ${rule.name}`),
    fields(rule, ["id", "program_id", "status", "order", "stop_after_match", "actions", "budgets", "version"].filter((n) => n in rule)),
    el("h2", {}, "Condition"),
    el("div", { class: "panel" }, condition, validate, " ", validateOut),
    el("h2", {}, "Simulate (writes nothing; the stored rule's condition)"),
    el("div", { class: "panel" }, el("label", {}, "Event data (JSON)"), eventJson,
      el("label", {}, "As if the participant had (tags, counters, attributes; JSON)"), stateJson, simulate, simulateOut),
    el("h2", {}, "Backtest the condition above"),
    backtestPanel(rule, condition),
    el("h2", {}, "Version history"),
    table(history.data),
  );
}

// The rule as an item of a proposed rule set: the fields POST /v1/rules takes, plus rule_id.
function proposed(rule, condition) {
  const budgets = (rule.budgets ?? []).map(({ asset_id, limit, schedule_type, cron_expression, interval }) =>
    Object.fromEntries(Object.entries({ asset_id, limit, schedule_type, cron_expression, interval }).filter(([, v]) => v != null)));
  const item = {
    rule_id: rule.id, name: rule.name, condition, actions: rule.actions, order: rule.order,
    stop_after_match: rule.stop_after_match, status: rule.status, budgets,
  };
  if (rule.description) item.description = rule.description;
  if (rule.active_from) item.active_from = rule.active_from;
  if (rule.active_to) item.active_to = rule.active_to;
  return item;
}

function backtestPanel(rule, condition) {
  const day_ms = 24 * 3600 * 1000;
  const from = el("input", { id: "backtest-from", class: "mono", size: 24, value: new Date(Date.now() - 30 * day_ms).toISOString() });
  const to = el("input", { id: "backtest-to", class: "mono", size: 24, value: new Date(Date.now() + 60 * 1000).toISOString() });
  const out = el("div", { id: "backtest-result" });
  const start = actionButton("Run backtest", "backtest", out, async () => {
    const current = (await get("/v1/rules", { program_id: rule.program_id, limit: 100 })).data;
    const rules = current.filter((r) => r.status !== "ARCHIVED").map((r) => proposed(r, r.id === rule.id ? condition.value : r.condition));
    const base = `/v1/programs/${encodeURIComponent(rule.program_id)}/backtests`;
    let job = await post(base, { rules, from: from.value, to: to.value });
    show(out, el("p", { class: "muted" }, `backtest ${job.id}: ${job.status}…`));
    while (job.status === "RUNNING") {
      await new Promise((resolve) => setTimeout(resolve, 250));
      job = await get(`${base}/${encodeURIComponent(job.id)}`);
    }
    return backtestReport(job);
  });
  return el("div", { class: "panel" }, el("label", {}, "From ", from), el("label", {}, "to ", to), start, out);
}

function backtestReport(job) {
  const report = job.report ?? job;
  const counts = ["events_replayed", "events_warmup", "events_skipped", "events_failed", "events_failed_actual", "participants_affected"];
  const rows = report.rules ?? [];
  return el("div", {},
    el("p", {}, "Status: ", el("span", { class: `status-${job.status}`, id: "backtest-status" }, job.status),
      job.failure_reason ? ` (${job.failure_reason})` : ""),
    fields(report, counts.filter((name) => name in report)),
    el("h3", {}, "Per rule: proposed against live"),
    el("div", { id: "backtest-rules" }, table(rows, ["name", "change", "asset_id", "matches", "actual_matches", "credited", "actual_credited", "debited", "actual_debited", "budget_hits"])),
    barChart(rows.map((row) => ({ label: row.name, proposed: Number(row.credited ?? 0), live: Number(row.actual_credited ?? 0) }))),
    el("h3", {}, "Per asset: proposed, live and their difference"),
    el("div", { id: "backtest-assets" }, table(report.assets ?? [], ["asset_id", "credited", "actual_credited", "difference_credited", "debited", "actual_debited", "difference_debited", "wallet_draw", "actual_wallet_draw", "participants_affected"])),
    (report.warnings ?? []).length ? el("div", { class: "warn" }, (report.warnings ?? []).map(text).join("; ")) : null,
  );
}
