// The ops console: renders each page from the documented /api/v1 routes, with the session
// cookie (and, for actions, the session's CSRF token). No framework: DOM nodes are built with
// `h`, so no text from the API is ever parsed as HTML.

const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
const main = document.getElementById("main");
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const timeFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric",
  hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
});

// ---- DOM ---------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function show(...nodes) {
  main.replaceChildren(...nodes.flat(Infinity).filter(Boolean));
}

function sid(value) {
  return value ? h("code", { class: "sid" }, value) : "–";
}

function time(value) {
  if (!value) return "–";
  const at = new Date(value);
  return h("time", { datetime: value, title: value }, timeFormat.format(at));
}

function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 60) return `${value.toFixed(1)} s`;
  if (value < 3600) return `${Math.floor(value / 60)} min ${String(Math.floor(value % 60)).padStart(2, "0")} s`;
  return `${Math.floor(value / 3600)} h ${String(Math.floor((value % 3600) / 60)).padStart(2, "0")} min`;
}

function badge(value, fallback = "–") {
  const text = value ?? fallback;
  return h("span", { class: `badge ${String(text).replace(/[^a-z_]/g, "")}` }, String(text).replace("_", " "));
}

function table(columns, rows, empty) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("thead", {}, h("tr", {}, columns.map(([label, cls]) => h("th", { scope: "col", class: cls }, label)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell, i) => h("td", { class: columns[i][1] }, cell)))))));
}

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "–")]));
}

function link(href, ...children) {
  return h("a", { href }, ...children);
}

function taskLink(value) {
  return value ? link(`/console/tasks/${value}`, sid(value)) : "–";
}

function conversationLink(value) {
  return value ? link(`/console/conversations/${value}`, sid(value)) : "–";
}

function title(text, sub) {
  document.title = `${text} · baton`;
  return [h("h1", {}, text), sub ? h("p", { class: "sub" }, sub) : null];
}

function problem(message) {
  return h("p", { class: "error", role: "alert" }, message);
}

// ---- API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json" };
  if (options.method && options.method !== "GET") {
    headers["X-CSRF-Token"] = csrf;
    headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, { credentials: "same-origin", ...options, headers });
  } catch {
    throw new ApiError(0, "unreachable", "baton could not be reached. Check that it is running, then reload.");
  }
  const body = await response.json().catch(() => null);
  if (response.status === 401) {
    const next = encodeURIComponent(location.pathname + location.search);
    location.assign(`/console/sign-in?expired=1&next=${next}`);
    throw new ApiError(401, "unauthorized", "Your session has ended. Sign in again.");
  }
  if (!response.ok) {
    const message = body?.error?.message ?? `baton answered ${response.status}`;
    throw new ApiError(response.status, body?.error?.code ?? "error", message);
  }
  return body;
}

function explain(error) {
  if (error.status === 403) return `Not allowed: ${error.message}`;
  if (error.status === 404) return `Not found: ${error.message}`;
  if (error.status === 503) return `The database is unavailable: ${error.message}`;
  return error.message;
}

// ---- confirmation --------------------------------------------------------------------------

function confirmDialog(question, detail, confirmLabel, choices) {
  return new Promise((resolve) => {
    let choice = choices?.[0]?.[0];
    const dialog = h("dialog", { "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, question),
      h("p", {}, detail),
      choices ? h("fieldset", {}, h("legend", {}, "Route"),
        choices.map(([value, label], i) => h("label", { class: "choice" },
          h("input", { type: "radio", name: "choice", value, checked: i === 0, onchange: () => { choice = value; } }),
          " ", label))) : null,
      h("div", { class: "buttons" },
        h("button", { type: "button", onclick: () => { dialog.close(); resolve(null); } }, "Cancel"),
        h("button", { type: "button", class: "primary", onclick: () => { dialog.close(); resolve(choice ?? true); } }, confirmLabel)));
    dialog.addEventListener("cancel", () => resolve(null));
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
  });
}

// ---- overview ------------------------------------------------------------------------------

const WINDOWS = [["1h", "Last hour"], ["24h", "Last 24 h"], ["7d", "Last 7 days"]];

function acceptChart(groups) {
  const rows = groups.filter((g) => g.group && g.accepted > 0).slice(0, 12);
  if (!rows.length) return h("p", { class: "empty" }, "No accepted transfers to a queue in this window.");
  const max = Math.max(...rows.map((g) => g.p90_seconds_to_accept ?? 0), 1);
  const rowHeight = 34, labelWidth = 220, width = 900;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", `0 0 ${width} ${rows.length * rowHeight + 10}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Time to accept by target queue: median and p90");
  const add = (tag, attrs, text) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text) el.textContent = text;
    svg.append(el);
  };
  rows.forEach((g, i) => {
    const y = i * rowHeight + 6;
    const scale = (v) => ((v ?? 0) / max) * (width - labelWidth - 120);
    add("text", { x: 0, y: y + 18 }, (g.name || g.group).slice(0, 28));
    add("rect", { class: "p90", x: labelWidth, y, width: Math.max(scale(g.p90_seconds_to_accept), 1), height: 24, rx: 3 });
    add("rect", { class: "median", x: labelWidth, y: y + 6, width: Math.max(scale(g.median_seconds_to_accept), 1), height: 12, rx: 2 });
    add("text", { x: labelWidth + scale(g.p90_seconds_to_accept) + 8, y: y + 17 },
      `${seconds(g.median_seconds_to_accept)} / ${seconds(g.p90_seconds_to_accept)} (${g.accepted})`);
  });
  return h("figure", {},
    svg,
    h("figcaption", { class: "legend" },
      h("span", {}, h("span", { class: "swatch median" }), "median"),
      h("span", {}, h("span", { class: "swatch p90" }), "p90"),
      h("span", {}, "(accepted transfers)")),
    table([["Queue"], ["SID"], ["Transfers", "num"], ["Accepted", "num"], ["Median", "num"], ["p90", "num"]],
      rows.map((g) => [g.name ?? "–", sid(g.group), g.total, g.accepted, seconds(g.median_seconds_to_accept), seconds(g.p90_seconds_to_accept)]),
      ""));
}

function attentionItem(item) {
  const target = item.outbox_id ? `/console/outbox/${item.outbox_id}`
    : item.park_id ? "/console/parks?state=parked"
    : item.task_sid ? `/console/tasks/${item.task_sid}` : null;
  return h("li", {}, badge(item.kind), " ", target ? link(target, item.summary) : item.summary, " · since ", time(item.since));
}

function card(label, value, bad) {
  return h("div", { class: `card${bad ? " bad" : ""}` }, h("div", { class: "label" }, label), h("div", { class: "value" }, value));
}

async function overviewPage() {
  const params = new URLSearchParams(location.search);
  const span = WINDOWS.some(([w]) => w === params.get("window")) ? params.get("window") : "1h";
  const render = (o) => {
    const t = o.transfers;
    show(
      title("Overview", `${WINDOWS.find(([w]) => w === span)[1]}: ${timeFormat.format(new Date(o.since))} to now`),
      h("nav", { class: "tabs", "aria-label": "Window" }, WINDOWS.map(([w, label]) =>
        h("a", { href: `/console?window=${w}`, "aria-current": w === span ? "true" : null }, label))),
      h("h2", {}, "Transfers in the window"),
      h("div", { class: "cards" },
        card("Total", t.total), card("Completed", t.completed), card("Failed", t.failed, t.failed > 0),
        card("Canceled", t.canceled), card("Routed back", t.returned), card("Still in flight", t.in_flight)),
      h("h2", {}, "Now"),
      h("div", { class: "cards" },
        card("Transfers in flight", o.in_flight_now),
        card("Parked", o.parked_count),
        card("Orphan closes (window)", `${o.orphan_closes.closed} closed · ${o.orphan_closes.kept} kept`),
        card("Outbox pending / in flight", `${o.health.outbox_pending} / ${o.health.outbox_in_flight}`),
        card("Outbox dead", o.health.outbox_dead, o.health.outbox_dead > 0),
        card("Inbox lag", o.health.inbox_pending ? `${seconds(o.health.inbox_lag_seconds)} (${o.health.inbox_pending})` : "none")),
      h("h2", {}, "Needs attention"),
      o.attention.length ? h("ul", { class: "attention" }, o.attention.map(attentionItem))
        : h("p", { class: "empty" }, "Nothing needs attention."),
      h("h2", {}, "Time to accept by target queue"),
      acceptChart(o.by_queue),
      h("h2", {}, "Parked now"),
      table([["Park"], ["Kind"], ["Task"], ["Worker"], ["Parked"], ["Held", "num"], ["Expires"]],
        o.parked_now.map((p) => [sid(p.park_id), p.kind, taskLink(p.task_sid), sid(p.worker_sid), time(p.parked_at), seconds(p.hold_seconds), time(p.expires_at)]),
        "Nothing is parked."),
      h("p", { class: "sub", id: "refreshed" }, `Updated ${timeFormat.format(new Date())}; refreshes every 10 s.`));
  };
  const load = async () => {
    const overview = await api(`/api/v1/overview?window=${span}`);
    // A refresh rebuilds the page: keep keyboard focus on the same link or button.
    const focused = main.contains(document.activeElement) ? document.activeElement : null;
    const key = (el) => `${el.tagName}|${el.getAttribute("href") ?? ""}|${el.textContent}`;
    const was = focused ? key(focused) : null;
    render(overview);
    if (was) [...main.querySelectorAll("a, button")].find((el) => key(el) === was)?.focus();
  };
  await load();
  setInterval(() => {
    load().catch((error) => {
      const note = document.getElementById("refreshed");
      if (note) note.replaceChildren(problem(`Refresh failed: ${explain(error)}`));
    });
  }, 10000);
}

// ---- transfers -----------------------------------------------------------------------------

const FILTERS = ["since", "until", "worker_sid", "queue_sid", "target_type", "outcome", "conversation_sid"];

function select(name, label, options, value) {
  return h("label", {}, label, h("select", { name },
    h("option", { value: "" }, "any"),
    options.map((o) => h("option", { value: o, selected: o === value }, o.replace("_", " ")))));
}

function input(name, label, value, attrs = {}) {
  return h("label", {}, label, h("input", { name, value: value ?? "", ...attrs }));
}

function target(t) {
  const name = t.target_type === "worker" ? (t.to_worker_name ?? t.target_sid) : (t.target_name ?? t.target_sid);
  return [t.target_type ?? "", " ", name ?? "–"];
}

async function transfersPage() {
  const params = new URLSearchParams(location.search);
  const query = new URLSearchParams();
  for (const name of [...FILTERS, "cursor"]) {
    const value = params.get(name);
    if (value) query.set(name, value);
  }
  if (!query.has("since")) query.set("since", "24h");
  const form = h("form", { class: "filters", method: "get", action: "/console/transfers" },
    input("since", "Since", query.get("since"), { placeholder: "24h, 2026-11-01…" }),
    input("until", "Until", query.get("until"), { placeholder: "now" }),
    input("worker_sid", "Worker", query.get("worker_sid"), { class: "sid-input", placeholder: "WK…" }),
    input("queue_sid", "Queue", query.get("queue_sid"), { class: "sid-input", placeholder: "WQ…" }),
    select("target_type", "Target type", ["worker", "queue", "workflow"], query.get("target_type")),
    select("outcome", "Outcome", ["completed", "failed", "canceled", "returned", "in_flight"], query.get("outcome")),
    input("conversation_sid", "Conversation", query.get("conversation_sid"), { class: "sid-input", placeholder: "CH…" }),
    h("button", { type: "submit", class: "primary" }, "Search"));
  const filterQuery = new URLSearchParams(query);
  filterQuery.delete("cursor");
  const csvQuery = new URLSearchParams(filterQuery);
  csvQuery.set("format", "csv");
  let page;
  try {
    page = await api(`/api/v1/transfers?${query}`);
  } catch (error) {
    show(title("Transfers"), form, problem(explain(error)));
    return;
  }
  const next = page.next ? (() => { const q = new URLSearchParams(filterQuery); q.set("cursor", page.next); return `/console/transfers?${q}`; })() : null;
  show(
    title("Transfers", "Every hop, newest first, whoever made it."),
    form,
    h("div", { class: "actions" },
      h("a", { href: `/api/v1/transfers?${csvQuery}`, download: "transfers.csv" }, "Download CSV (every transfer of this filter)"),
      query.has("cursor") ? link(`/console/transfers?${filterQuery}`, "First page") : null),
    table([["Initiated"], ["From"], ["To"], ["Mode"], ["Outcome"], ["To accept", "num"], ["Task"]],
      page.transfers.map((t) => [
        time(t.initiated_at),
        [t.from_worker_name ?? "", " ", sid(t.from_worker_sid)],
        target(t),
        t.mode ?? "–",
        badge(t.outcome, "in_flight"),
        seconds(t.seconds_to_accept),
        taskLink(t.to_task_sid),
      ]),
      "No transfers in this window."),
    next ? h("div", { class: "actions" }, link(next, "Next page →")) : null);
}

// ---- task chain ----------------------------------------------------------------------------

function linkage(task, calls) {
  if (task.stamped_at) return ["stamped by baton ", time(task.stamped_at)];
  if (task.linked_at) return ["linked ", time(task.linked_at)];
  const stamp = calls.find((c) => c.kind === "stamp_insights" && c.task_sid === task.task_sid);
  if (stamp) return ["stamp ", link(`/console/outbox/${stamp.id}`, badge(stamp.state))];
  return "not linked: the task carried no chain id and baton had nothing to stamp";
}

function worker(workerSid, names) {
  if (!workerSid) return "–";
  const name = names.get(workerSid);
  return name ? [name, " ", sid(workerSid)] : sid(workerSid);
}

function hopItem(hop, names) {
  const to = hop.target_type === "worker" && hop.target_sid
    ? ["worker ", worker(hop.target_sid, names)]
    : [hop.target_type ?? "", " ", hop.target_name ?? "", " ", sid(hop.target_sid)];
  const by = hop.initiated_by && names.has(hop.initiated_by) ? names.get(hop.initiated_by) : hop.initiated_by;
  return h("li", { class: "hop" }, h("div", { class: "hop-body" },
    h("strong", {}, `Hop ${hop.seq}: `), badge(hop.outcome, "in_flight"), " ", hop.mode ?? "",
    facts([
      ["From", [taskLink(hop.from_task_sid), " · ", worker(hop.from_worker_sid, names)]],
      ["To", [to, " → ", taskLink(hop.to_task_sid), hop.to_worker_sid ? [hop.accepted_at ? " · taken by " : " · offered to ", worker(hop.to_worker_sid, names)] : ""]],
      ["Initiated", [time(hop.initiated_at), by ? ` by ${by}` : ""]],
      ["Time to accept", seconds(hop.seconds_to_accept)],
      ["In the hop", seconds(hop.seconds_in_hop)],
      hop.notes ? ["Notes", hop.notes] : null,
      hop.vocabulary ? ["Said by", hop.vocabulary] : null,
    ])));
}

async function taskPage(taskSid) {
  const chain = await api(`/api/v1/tasks/${encodeURIComponent(taskSid)}/chain`);
  // Workers' names, as their reservations carry them.
  const names = new Map(chain.tasks.flatMap((t) => t.reservations)
    .filter((r) => r.worker_sid && r.worker_name).map((r) => [r.worker_sid, r.worker_name]));
  const items = [];
  for (const task of chain.tasks) {
    items.push(h("li", { class: "task-item", id: task.task_sid }, h("div", { class: "task" },
      h("strong", {}, `Task ${task.position + 1}: `), sid(task.task_sid), " ", badge(task.assignment_status),
      task.task_sid === taskSid ? " (searched)" : "",
      facts([
        ["Queue", sid(task.task_queue_sid)],
        ["Channel", task.task_channel],
        ["Insights", linkage(task, chain.calls)],
      ]),
      task.reservations.length ? table([["Reservation"], ["Worker"], ["Offered"], ["Status"], ["Since"]],
        task.reservations.map((r) => [sid(r.reservation_sid), [r.worker_name ?? "", " ", sid(r.worker_sid)], time(r.offered_at), badge(r.status), time(r.status_at)]),
        "") : h("p", { class: "empty" }, "Never offered to a worker."))));
    for (const hop of chain.hops.filter((hop) => hop.from_task_sid === task.task_sid)) items.push(hopItem(hop, names));
  }
  show(
    title("Transfer chain", null),
    facts([["Chain", sid(chain.chain_id)], ["Root task", taskLink(chain.root_task_sid)], ["Started", time(chain.started_at)],
      ["Tasks / hops", `${chain.tasks.length} / ${chain.hops.length}`]]),
    h("h2", {}, "Timeline"),
    h("ol", { class: "timeline" }, items),
    h("h2", {}, "Twilio calls baton made for this chain"),
    table([["Call"], ["Kind"], ["State"], ["Task"], ["Attempts", "num"], ["Created"]],
      chain.calls.map((c) => [link(`/console/outbox/${c.id}`, `#${c.id}`), c.kind, badge(c.state), sid(c.task_sid), c.attempts, time(c.created_at)]),
      "baton made no Twilio call for this chain."));
}

// ---- conversation --------------------------------------------------------------------------

async function conversationPage(conversationSid) {
  const c = await api(`/api/v1/conversations/${encodeURIComponent(conversationSid)}`);
  show(
    title("Conversation", null),
    facts([
      ["Conversation", sid(c.conversation_sid)], ["State", [badge(c.state), c.state_reason ? ` (${c.state_reason})` : ""]],
      ["Interaction", sid(c.interaction_sid)], ["Interaction channel", sid(c.channel_sid)], ["Channel", c.channel_type],
      ["First seen", time(c.first_seen_at)], ["Last task ended", time(c.last_task_ended_at)],
      ["Orphan check due", c.orphan_check_due_at ? time(c.orphan_check_due_at) : "none pending"],
      ["Last orphan check", c.last_check_at ? [time(c.last_check_at), ": ", c.last_check_result ?? ""] : "never"],
    ]),
    h("h2", {}, "Tasks"),
    table([["Task"], ["Status"], ["Queue"], ["Chain"]],
      c.tasks.map((t) => [taskLink(t.task_sid), badge(t.assignment_status), sid(t.task_queue_sid), sid(t.chain_id)]),
      "No tasks."),
    h("h2", {}, "Parks"),
    table([["Park"], ["State"], ["Task"], ["Parked"], ["Held", "num"], ["Ended by"]],
      c.parks.map((p) => [sid(p.park_id), badge(p.state), taskLink(p.task_sid), time(p.parked_at), seconds(p.hold_seconds), p.ended_by ?? "–"]),
      "Never parked."),
    h("h2", {}, "Close"),
    c.close ? h("div", { class: "panel" }, facts([
      ["Why", `${c.close.reason}${c.close.detail ? `: ${c.close.detail}` : ""}`],
      ["Decided", time(c.close.decided_at)],
      ["Result", c.close.result ? [c.close.result, " ", time(c.close.result_at)] : "not sent yet"],
      ["How", c.close.method],
      ["Call", c.close.outbox_id ? link(`/console/outbox/${c.close.outbox_id}`, [`#${c.close.outbox_id} `, badge(c.close.outbox_state)]) : "–"],
    ])) : h("p", { class: "empty" }, "baton has not decided to close it."));
}

// ---- parks ---------------------------------------------------------------------------------

async function resume(park) {
  const route = await confirmDialog(`Resume park ${park.park_id}?`,
    "The customer is routed back now; the park ends.", "Resume",
    [["same_worker", "To the same worker"], ["queue", "To the queue"]]);
  if (!route) return;
  try {
    await api(`/api/v1/parks/${encodeURIComponent(park.park_id)}/resume`, { method: "POST", body: JSON.stringify({ route }) });
    await parksPage(`Park ${park.park_id} resumed.`);
  } catch (error) {
    await parksPage(null, `Could not resume ${park.park_id}: ${explain(error)}`);
  }
}

async function parksPage(done, failed) {
  const params = new URLSearchParams(location.search);
  const state = params.get("state") ?? "parked";
  const query = state === "all" ? "" : `?state=${state}`;
  const { parks } = await api(`/api/v1/parks${query}`);
  show(
    title("Parks", "Parked conversations and calls, with how long they have been held."),
    done ? h("p", { class: "notice", role: "status" }, done) : null,
    failed ? problem(failed) : null,
    h("nav", { class: "tabs", "aria-label": "State" }, ["parked", "resumed", "expired", "ended", "all"].map((s) =>
      h("a", { href: `/console/parks?state=${s}`, "aria-current": s === state ? "true" : null }, s))),
    table([["Park"], ["Kind"], ["State"], ["Task"], ["Worker"], ["Conversation"], ["Parked"], ["Held", "num"], [""]],
      parks.map((p) => [sid(p.park_id), p.kind, badge(p.state), taskLink(p.task_sid), sid(p.worker_sid), conversationLink(p.conversation_sid),
        time(p.parked_at), seconds(p.hold_seconds),
        p.state === "parked" ? h("button", { type: "button", onclick: () => resume(p) }, "Resume") : ""]),
      state === "parked" ? "Nothing is parked." : `No ${state === "all" ? "" : state + " "}parks.`));
}

// ---- outbox --------------------------------------------------------------------------------

const CALL_STATES = ["pending", "in_flight", "done", "dead"];

async function outboxPage() {
  const params = new URLSearchParams(location.search);
  const state = CALL_STATES.includes(params.get("state")) ? params.get("state") : null;
  const query = new URLSearchParams();
  if (state) query.set("state", state);
  if (params.get("cursor")) query.set("cursor", params.get("cursor"));
  const page = await api(`/api/v1/outbox?${query}`);
  const calls = page.calls ?? [];
  show(
    title("Outbox", "Every Twilio call baton decided on, newest first."),
    h("nav", { class: "tabs", "aria-label": "State" },
      h("a", { href: "/console/outbox", "aria-current": state ? null : "true" }, "all"),
      CALL_STATES.map((s) => h("a", { href: `/console/outbox?state=${s}`, "aria-current": s === state ? "true" : null }, s.replace("_", " ")))),
    table([["Call"], ["Kind"], ["State"], ["Request"], ["Task"], ["Conversation"], ["Attempts", "num"], ["Updated"], ["Last error"]],
      calls.map((c) => [link(`/console/outbox/${c.id}`, `#${c.id}`), c.kind, badge(c.state), h("code", {}, `${c.method} ${c.path}`),
        taskLink(c.task_sid), conversationLink(c.conversation_sid), c.attempts, time(c.updated_at),
        c.withdrawn ? `withdrawn: ${c.withdrawn}` : c.last_error ? lastError(c.last_error) : ""]),
      state ? `No ${state.replace("_", " ")} calls.` : "No calls yet."),
    page.next ? h("div", { class: "actions" }, link(`/console/outbox?${new URLSearchParams({ ...(state ? { state } : {}), cursor: page.next })}`, "Older →")) : null);
}

function lastError(e) {
  return [e.http_status ? `HTTP ${e.http_status}` : "", e.twilio_code ? ` · Twilio ${e.twilio_code}` : "", e.message ? ` · ${e.message}` : ""];
}

async function redrive(call) {
  const ok = await confirmDialog(`Re-drive call #${call.id}?`,
    `${call.method} ${call.path} is sent to Twilio again (after the checks baton makes before any destructive call).`, "Re-drive");
  if (!ok) return;
  try {
    await api(`/api/v1/outbox/${call.id}/retry`, { method: "POST" });
  } catch (error) {
    await callPage(call.id, `Re-drive refused: ${explain(error)}`);
    return;
  }
  await callPage(call.id, null, "Re-driven: pending again.");
  // Follow it until it ends.
  for (let i = 0; i < 60; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = await api(`/api/v1/outbox/${call.id}`);
    const c = now.call ?? now;
    if (c.state === "done" || c.state === "dead") {
      await callPage(call.id, null, c.state === "done" ? "Re-driven: done." : "Re-driven, and dead again: see the latest attempt.");
      return;
    }
  }
}

async function callPage(id, failed, done) {
  const body = await api(`/api/v1/outbox/${encodeURIComponent(id)}`);
  const c = body.call ?? body;
  const attempts = body.attempts ?? [];
  show(
    title(`Call #${c.id}`, `${c.kind}: ${c.method} ${c.path}`),
    done ? h("p", { class: "notice", role: "status", id: "call-status" }, done) : null,
    failed ? problem(failed) : null,
    h("div", { class: "actions" },
      h("span", {}, "State: ", badge(c.state)),
      c.state === "dead" ? h("button", { type: "button", class: "danger", onclick: () => redrive(c) }, "Re-drive") : null),
    facts([
      ["Idempotency key", h("code", {}, c.idempotency_key)], ["Product", c.product], ["Task", taskLink(c.task_sid)],
      ["Conversation", conversationLink(c.conversation_sid)], ["Caused by event", c.caused_by_event],
      ["Attempts", c.attempts], ["Re-drives", c.redrives], ["Created", time(c.created_at)], ["Updated", time(c.updated_at)],
      c.next_attempt_at ? ["Next attempt", time(c.next_attempt_at)] : null,
      c.done_at ? ["Done", time(c.done_at)] : null, c.dead_at ? ["Dead", time(c.dead_at)] : null,
      c.withdrawn ? ["Withdrawn", c.withdrawn] : null,
      c.last_error ? ["Last error", lastError(c.last_error)] : null,
    ]),
    h("h2", {}, "Form parameters"),
    table([["Name"], ["Value", "mono"]], (c.form ?? body.form ?? []).map(([k, v]) => [h("code", {}, k), v]), "No parameters."),
    h("h2", {}, "Attempts"),
    table([["#", "num"], ["Started"], ["Finished"], ["HTTP", "num"], ["Twilio code", "num"], ["Error"], ["Decision"]],
      attempts.map((a) => [a.attempt, time(a.started_at), time(a.finished_at), a.http_status ?? "–", a.twilio_code ?? "–", a.error ?? "", a.decision]),
      "Not attempted yet."),
    h("h2", {}, "Twilio's last answer"),
    (c.response ?? body.response) ? h("pre", {}, JSON.stringify(c.response ?? body.response, null, 2)) : h("p", { class: "empty" }, "No answer recorded."));
}

// ---- search --------------------------------------------------------------------------------

async function search(raw) {
  const q = raw.trim();
  if (/^\d+$/.test(q)) return `/console/outbox/${q}`;
  const kind = q.slice(0, 2).toUpperCase();
  if (!/^[A-Za-z]{2}[0-9a-fA-F]{32}$/.test(q)) throw new Error(`"${q}" is neither a SID (two letters and 32 hex digits) nor an outbox call id.`);
  const s = kind + q.slice(2);
  if (kind === "WK") return `/console/transfers?worker_sid=${s}`;
  if (kind === "WQ") return `/console/transfers?queue_sid=${s}`;
  if (!["WT", "WR", "CH", "KD", "UO"].includes(kind)) throw new Error(`${kind}… SIDs are not something baton keeps.`);
  const found = await api(`/api/v1/sids/${s}`);
  if (found.task_sid) return `/console/tasks/${found.task_sid}`;
  if (found.conversation_sid) return `/console/conversations/${found.conversation_sid}`;
  throw new Error(`baton knows ${s} but has no page for it.`);
}

document.getElementById("search")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = new FormData(event.target).get("q") ?? "";
  try {
    location.assign(await search(String(value)));
  } catch (error) {
    show(title("Search"), problem(error instanceof ApiError ? explain(error) : error.message));
  }
});

// ---- routing -------------------------------------------------------------------------------

const ROUTES = [
  [/^\/console\/?$/, "overview", () => overviewPage()],
  [/^\/console\/transfers\/?$/, "transfers", () => transfersPage()],
  [/^\/console\/tasks\/([^/]+)$/, "transfers", (m) => taskPage(decodeURIComponent(m[1]))],
  [/^\/console\/conversations\/([^/]+)$/, "transfers", (m) => conversationPage(decodeURIComponent(m[1]))],
  [/^\/console\/parks\/?$/, "parks", () => parksPage()],
  [/^\/console\/outbox\/?$/, "outbox", () => outboxPage()],
  [/^\/console\/outbox\/([^/]+)$/, "outbox", (m) => callPage(decodeURIComponent(m[1]))],
];

async function route() {
  document.getElementById("zone")?.replaceChildren(`Times are shown in ${zone}.`);
  for (const [pattern, nav, render] of ROUTES) {
    const m = location.pathname.match(pattern);
    if (!m) continue;
    document.querySelector(`[data-nav="${nav}"]`)?.setAttribute("aria-current", "page");
    try {
      await render(m);
    } catch (error) {
      show(title("Something went wrong"), problem(error instanceof ApiError ? explain(error) : `The page failed: ${error.message}`));
    }
    return;
  }
  show(title("Not found"), problem(`The console has no page at ${location.pathname}.`));
}

route();
