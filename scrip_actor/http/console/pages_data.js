// Pages that read the engine's data: programs and assets, participants, events, the journal.
import { get } from "./api.js";
import { el, fields, link, show, table, text } from "./dom.js";

const eventLink = (row) => link(`#/events/${encodeURIComponent(row.id)}`, row.id);

export async function programsPage(view) {
  const programs = (await get("/v1/programs", { limit: 50 })).data;
  const sections = [el("h1", {}, "Programs and assets")];
  for (const program of programs) {
    const [assets, wallet] = await Promise.all([
      get(`/v1/programs/${encodeURIComponent(program.id)}/assets`),
      get(`/v1/programs/${encodeURIComponent(program.id)}/balance`),
    ]);
    sections.push(
      el("h2", {}, `${program.name} `, el("span", { class: "muted" }, program.id)),
      fields(program, ["status", "on_unknown_participant", "created_at"].filter((name) => name in program)),
      el("h2", {}, "Assets"),
      table(assets.data ?? [], ["asset_id", "id", "name", "symbol", "inventory_mode", "issuance_policy", "scale"].filter(
        (name) => (assets.data ?? []).some((row) => name in row),
      )),
      el("h2", {}, "Wallet balances (PREFUNDED assets)"),
      table(wallet.data ?? (Array.isArray(wallet) ? wallet : [wallet])),
    );
  }
  if (programs.length === 0) sections.push(el("p", { class: "muted" }, "No programs yet."));
  show(view, sections);
}

function searchForm(label, name, value, onSubmit) {
  const input = el("input", { name, value: value ?? "", class: "mono", size: 36, "aria-label": label });
  const form = el("form", {}, el("label", {}, label, input), el("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onSubmit(input.value.trim());
  });
  return form;
}

export async function participantsPage(view, query) {
  const externalId = query.get("external_id");
  const form = searchForm("External id", "external_id", externalId, (value) => {
    location.hash = `#/participants?external_id=${encodeURIComponent(value)}`;
  });
  if (!externalId) {
    const recent = (await get("/v1/participants", { limit: 20 })).data;
    const rows = recent.map((row) => ({ ...row, external_id: row.external_id }));
    show(view, el("h1", {}, "Participants"), form, el("h2", {}, "Newest"), table(rows, [
      ["external_id", (row) => link(`#/participants?external_id=${encodeURIComponent(row.external_id)}`, row.external_id)],
      ["id", (row) => row.id], ["status", (row) => row.status], ["created_at", (row) => row.created_at],
    ]));
    return;
  }
  const found = (await get("/v1/participants", { external_id: externalId })).data;
  if (found.length === 0) {
    show(view, el("h1", {}, "Participants"), form, el("p", { class: "error" }, `No participant with external id ${externalId}.`));
    return;
  }
  const participant = found[0];
  const base = `/v1/participants/${encodeURIComponent(participant.id)}`;
  const [balances, tags, counters, attributes, tiers, events, history] = await Promise.all([
    get(`${base}/balances`), get(`${base}/state/tags`), get(`${base}/state/counters`),
    get(`${base}/state/attributes`), tierStates(base, participant),
    get(`${base}/events`, { limit: 20 }), get(`${base}/activity/history`, { limit: 20 }),
  ]);
  show(
    view,
    el("h1", {}, `Participant ${participant.external_id}`),
    form,
    fields(participant),
    el("h2", {}, "Balances"), table(balances.data, ["asset_id", "available", "held", "deferred"]),
    el("h2", {}, "Lots (with expiry)"), await lotTables(base, balances.data),
    el("h2", {}, "Tags"), table(tags.data.map((item) => (typeof item === "object" ? item : { tag: item }))),
    el("h2", {}, "Counters"), table(counters.data),
    el("h2", {}, "Attributes"), table(attributes.data),
    el("h2", {}, "Tiers"), table(tiers),
    el("h2", {}, "Events"), table(events.data, [["id", eventLink], "status", "event_timestamp", "created_at"].map(
      (column) => (Array.isArray(column) ? column : [column, (row) => text(row[column] ?? row.received_at)]),
    )),
    el("h2", {}, "Activity history"),
    table(history.data, ["created_at", "action_type", "amount", "asset_symbol", "bucket", "event_id", "description"]),
  );
}

// Tier levels are per program: one call for each program the participant belongs to.
async function tierStates(base, participant) {
  const states = await Promise.all((participant.program_ids ?? []).map((programId) =>
    get(`${base}/state/tiers`, { program_id: programId }).then((page) => page.data.map((row) => ({ program_id: programId, ...row })))));
  return states.flat();
}

// Lots exist for LOT assets only (the route refuses the others), so ask each balance's asset for its mode first.
async function lotTables(base, balances) {
  const parts = [];
  for (const balance of balances) {
    const asset = await get(`/v1/assets/${encodeURIComponent(balance.asset_id)}`);
    if (asset.inventory_mode !== "LOT") continue;
    const lots = await get(`${base}/balances/lots`, { asset_id: balance.asset_id, limit: 100 });
    const columns = ["id", "status", "amount", "remaining", "created_at", "expires_at", "matures_at", "event_id"];
    parts.push(el("h3", {}, `${asset.symbol} (${asset.name})`), table(lots.data, columns));
  }
  return parts.length ? parts : el("p", { class: "muted" }, "no LOT assets held");
}

export async function eventsPage(view, query) {
  const filters = {
    program_id: query.get("program_id"), status: query.get("status"), external_id: query.get("external_id"),
  };
  const inputs = {
    program_id: el("input", { name: "program_id", value: filters.program_id ?? "", class: "mono", size: 36 }),
    external_id: el("input", { name: "external_id", value: filters.external_id ?? "", class: "mono" }),
    status: el("select", { name: "status" }, ["", "PENDING", "PROCESSING", "COMPLETED", "FAILED"].map(
      (status) => el("option", { value: status, selected: status === (filters.status ?? "") }, status || "any status"),
    )),
  };
  const form = el("form", {},
    el("label", {}, "Program ", inputs.program_id), el("label", {}, "External id ", inputs.external_id),
    inputs.status, el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [name, input] of Object.entries(inputs)) if (input.value) params.set(name, input.value);
    location.hash = `#/events?${params}`;
  });
  const events = (await get("/v1/events", { ...filters, limit: 50 })).data;
  show(view, el("h1", {}, "Events"), form, table(events, [
    ["id", eventLink], ["status", (row) => row.status], ["external_id", (row) => text(row.external_id)],
    ["received_at", (row) => text(row.received_at)], ["data", (row) => text(row.event_data)],
  ]));
}

export async function eventPage(view, eventId) {
  const event = await get(`/v1/events/${encodeURIComponent(eventId)}`, { include_skipped: "true" });
  const entries = (await get("/v1/journal-entries", { event_id: eventId })).data;
  const { rule_evaluations: evaluations = [], ...rest } = event;
  show(
    view,
    el("h1", {}, "Event ", el("code", {}, event.id)),
    el("p", {}, "Status: ", el("span", { class: `status-${event.status}`, id: "event-status" }, event.status)),
    fields(rest),
    el("h2", {}, "Rule evaluations"),
    el("div", { id: "rule-evaluations" }, table(evaluations)),
    el("h2", {}, "Journal entries it made"),
    el("div", { id: "journal-entries" }, entries.map(journalEntry)),
  );
}

function journalEntry(entry) {
  const { postings = [], ...rest } = entry;
  const columns = ["entity_type", "entity_id", "asset_symbol", "bucket", "amount"];
  return el("div", { class: "panel" }, fields(rest), table(postings, columns));
}

export async function journalPage(view, query) {
  const cursor = query.get("cursor");
  const page = await get("/v1/journal-entries", { limit: 25, cursor });
  const next = page.pagination?.next_cursor;
  show(
    view,
    el("h1", {}, "Journal"),
    el("p", { class: "muted" }, "Newest entries first; each entry's postings balance to zero per asset."),
    el("div", { id: "journal" }, page.data.map(journalEntry)),
    next ? link(`#/journal?cursor=${encodeURIComponent(next)}`, "Older entries →") : null,
  );
}
