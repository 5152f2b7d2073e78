// orbitdock dashboard: a client of the upstream OrbitDock WebSocket protocol (orbitdock-ws).
// No build step, no dependencies. State: the list (sessions_list + session_created upserts)
// and the open session's copy (session_snapshot + revisioned events, resumed after a
// reconnect with since_revision). docs/WS_PROTOCOL.md describes every message.
"use strict";

const params = new URLSearchParams(location.search);
const token = params.get("token") || sessionStorage.getItem("orbitdock-token");
if (token) sessionStorage.setItem("orbitdock-token", token);

const state = {
  ws: null, epoch: null, list: new Map(), current: null, session: null,
  retry: 0, notified: new Map(), listLoaded: false,
};
const $ = (sel) => document.querySelector(sel);
const ATTENTION_ORDER = { awaitingPermission: 0, awaitingQuestion: 1, awaitingReply: 2, none: 3 };

// ------------------------------------------------------------------ connection
function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const url = `${proto}://${location.host}/ws` + (token ? `?token=${encodeURIComponent(token)}` : "");
  const ws = new WebSocket(url);
  state.ws = ws;
  setConn("connecting", "connecting…");
  ws.onopen = () => {
    state.retry = 0;
    setConn("open", "live");
    send({ type: "subscribe_list" });
    if (state.current) subscribeSession(state.current, true);
  };
  ws.onmessage = (ev) => onFrame(JSON.parse(ev.data));
  ws.onclose = () => {
    setConn("closed", "reconnecting…");
    const delay = Math.min(5000, 250 * 2 ** state.retry++);
    setTimeout(connect, delay);
  };
  ws.onerror = () => {};  // onclose follows and reconnects
}

function send(msg) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify(msg));
    return true;
  }
  toast("not connected; retrying");
  return false;
}

function setConn(kind, text) {
  const el = $("#conn");
  el.dataset.state = kind;
  el.textContent = text;
}

function subscribeSession(id, resume) {
  const msg = { type: "subscribe_session", session_id: id };
  if (resume && state.session && state.session.id === id) {
    msg.since_revision = state.session.revision;
    msg.since_epoch = state.epoch;
  }
  send(msg);
}

// ------------------------------------------------------------------ frames
function onFrame(f) {
  switch (f.type) {
    case "server_info": state.epoch = f.epoch; return;
    case "sessions_list":
      state.list = new Map(f.sessions.map((s) => [s.id, s]));
      for (const s of f.sessions) state.notified.set(s.id, s.attention_reason);
      state.listLoaded = true;
      renderList();
      return;
    case "session_created": upsert(f.session); return;
    case "session_snapshot":
      if (f.session.id === state.current) {
        state.session = f.session;
        state.epoch = f.epoch || state.epoch;
        renderSession(true);
      }
      return;
    case "error": toast(`${f.code}: ${f.message}`); return;
    case "approval_decision_result":
      if (f.outcome === "stale") toast("that approval was already decided");
      return;
    case "models_list": return;
    case "session_forked":
      toast("forked: now showing the new session");
      select(f.new_session_id);
      return;
    case "thread_rolled_back":
      toast(`rolled back ${f.num_turns} turn(s); files on disk were not reverted`);
      return;
  }
  const s = state.session;
  if (!s || f.session_id !== s.id || f.revision === undefined) return;
  if (f.revision < s.revision) return;  // already in the snapshot
  switch (f.type) {
    case "session_delta":
      Object.assign(s, f.changes);
      renderHead();
      if ("approvals" in f.changes) renderApprovals();
      if ("plan" in f.changes) renderPlan();
      break;
    case "tokens_updated": s.token_usage = f.usage; renderHead(); break;
    case "message_appended":
      s.messages.push(f.message);
      s.total_message_count += 1;
      $("#conversation").append(renderMessage(f.message));
      scrollDown();
      break;
    case "message_updated": {
      const m = s.messages.findLast((x) => x.id === f.message_id);
      if (m) {
        Object.assign(m, f.changes);
        const old = document.getElementById(domId(m.id));
        if (old) old.replaceWith(renderMessage(m));
        scrollDown();
      }
      break;
    }
    case "session_ended":
      Object.assign(s, { status: "ended", work_status: "ended", attention_reason: "none",
                         end_reason: f.reason });
      renderHead();
      break;
  }
  s.revision = f.revision;
  if (f.last_activity_at) s.last_activity_at = f.last_activity_at;
}

function upsert(row) {
  const before = state.notified.get(row.id);
  state.list.set(row.id, row);
  state.notified.set(row.id, row.attention_reason);
  const waiting = row.attention_reason && row.attention_reason !== "none";
  if (state.listLoaded && waiting && before !== row.attention_reason) notify(row);
  renderList();
}

// ------------------------------------------------------------------ notifications
function askNotificationPermission() {
  if (!("Notification" in window) || localStorage.getItem("orbitdock-asked")) return;
  localStorage.setItem("orbitdock-asked", "1");
  if (Notification.permission === "default") Notification.requestPermission();
}

function notify(row) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const what = { awaitingPermission: "needs your approval", awaitingQuestion: "asks you something",
                 awaitingReply: "waits for your reply" }[row.attention_reason] || "waits for you";
  const n = new Notification(`${nameOf(row)} ${what}`, {
    body: row.pending_question || row.last_message || row.project_path || "",
    tag: `orbitdock-${row.id}`,
  });
  n.onclick = () => { window.focus(); select(row.id); n.close(); };
  window.__orbitdockNotifications = (window.__orbitdockNotifications || 0) + 1;
}

// ------------------------------------------------------------------ list
function nameOf(s) {
  return s.custom_name || s.display_name || s.summary || s.first_prompt || s.project_name || s.id;
}

function sortedSessions() {
  return [...state.list.values()].sort((a, b) =>
    (ATTENTION_ORDER[a.attention_reason] ?? 3) - (ATTENTION_ORDER[b.attention_reason] ?? 3)
    || (a.status === "ended") - (b.status === "ended")
    || parseTime(b.last_activity_at) - parseTime(a.last_activity_at));
}

function parseTime(t) {
  if (!t) return 0;
  return /^\d+Z$/.test(t) ? parseInt(t, 10) * 1000 : Date.parse(t);
}

function renderList() {
  const rows = sortedSessions();
  for (const col of document.querySelectorAll(".column")) {
    const ol = col.querySelector("ol");
    ol.replaceChildren(...rows.filter((s) => (s.provider === "claude") === (col.dataset.provider === "claude"))
      .map(renderRow));
  }
  const waiting = rows.filter((s) => s.attention_reason && s.attention_reason !== "none"
                                     && s.attention_reason !== "awaitingReply").length;
  $("#attention-summary").textContent = waiting ? `${waiting} waiting on you` : "";
}

function renderRow(s) {
  const li = el("li", { class: "session" + (s.id === state.current ? " selected" : "") });
  li.dataset.sessionId = s.id;
  li.dataset.attention = s.attention_reason || "none";
  const top = el("div", { class: "name" }, nameOf(s));
  const badge = el("span", { class: "badge" }, s.work_status);
  badge.dataset.status = s.work_status;
  const sub = el("div", { class: "sub" },
    `${s.backend || s.provider} · ${s.project_name || s.project_path || ""}` +
    (s.pending_question ? ` · ${s.pending_question}` : s.last_message ? ` · ${s.last_message}` : ""));
  li.append(top, badge, sub);
  li.onclick = () => select(s.id);
  return li;
}

function select(id) {
  if (state.current === id) return;
  if (state.current) send({ type: "unsubscribe_session", session_id: state.current });
  state.current = id;
  state.session = null;
  document.body.classList.add("in-session");
  $("#detail").hidden = false;
  $("#empty").hidden = true;
  $("#conversation").replaceChildren();
  $("#approvals").replaceChildren();
  subscribeSession(id, false);
  renderList();
  askNotificationPermission();
}

// ------------------------------------------------------------------ session view
function renderSession(full) {
  renderHead();
  renderPlan();
  renderApprovals();
  if (full) {
    $("#conversation").replaceChildren(...state.session.messages.map(renderMessage));
    renderEarlierButton();
    scrollDown(true);
  }
}

function renderEarlierButton() {
  const s = state.session;
  document.getElementById("earlier")?.remove();
  if (!s || !s.has_more_before) return;
  const li = el("li", { id: "earlier", class: "meta" });
  const b = el("button", {}, `Load earlier messages (${s.total_message_count - s.messages.length} more)`);
  b.onclick = () => loadEarlier(s.id);
  li.append(b);
  $("#conversation").prepend(li);
}

// Older messages than the snapshot's window: a page from the daemon's store.
async function loadEarlier(id) {
  const s = state.session;
  if (!s || s.id !== id) return;
  const q = new URLSearchParams({ limit: "50" });
  if (s.oldest_sequence != null) q.set("before_sequence", s.oldest_sequence);
  if (token) q.set("token", token);
  const resp = await fetch(`/api/sessions/${encodeURIComponent(id)}/messages?${q}`);
  const page = await resp.json();
  if (!resp.ok) { toast(`${page.code || resp.status}: ${page.message || page.error || ""}`); return; }
  if (state.session !== s) return;
  s.messages.unshift(...page.messages);
  s.oldest_sequence = page.oldest_sequence ?? s.oldest_sequence;
  s.has_more_before = page.has_more_before;
  const c = $("#conversation");
  const anchor = document.getElementById("earlier")?.nextSibling || c.firstChild;
  for (const msg of page.messages) c.insertBefore(renderMessage(msg), anchor);
  renderEarlierButton();
}

function renderHead() {
  const s = state.session;
  if (!s) return;
  $("#detail-title").textContent = nameOf(s);
  const badge = $("#detail-status");
  badge.textContent = s.work_status;
  badge.dataset.status = s.work_status;
  $("#detail-meta").textContent = [s.backend || s.provider, s.model, s.project_path, s.git_branch]
    .filter(Boolean).join(" · ");
  const u = s.token_usage || {};
  const pct = u.context_window ? Math.min(100, (100 * u.input_tokens) / u.context_window) : 0;
  const fill = $("#context-fill");
  fill.style.width = `${pct}%`;
  fill.className = pct > 90 ? "full" : pct > 70 ? "high" : "";
  $("#tokens").textContent = `${fmt(u.input_tokens)} in · ${fmt(u.output_tokens)} out` +
    (u.cached_tokens ? ` · ${fmt(u.cached_tokens)} cached` : "") +
    (u.context_window ? ` · ${pct.toFixed(0)}% of ${fmt(u.context_window)}` : "");
  renderControls(s);
  const working = s.work_status === "working";
  $("#send").textContent = working ? "Steer" : "Send";
  document.querySelector('[data-action="resume"]').disabled = s.status !== "ended";
  document.querySelector('[data-action="end"]').disabled = s.status === "ended";
  document.querySelector('[data-action="interrupt"]').disabled = !working;
  renderOps(s);
  const row = state.list.get(s.id);
  if (row) renderList();
}

// The autonomy control speaks the session's own terms: Codex approval policies, or
// Claude's permission modes (sent as upstream's permission_mode).
const AUTONOMY = {
  codex: [["untrusted", "ask for everything"], ["on-request", "ask when it wants"],
          ["on-failure", "ask on failure"], ["never", "never ask"]],
  claude: [["default", "ask (default)"], ["acceptEdits", "accept edits"], ["plan", "plan only"],
           ["dontAsk", "don't ask (deny)"], ["bypassPermissions", "bypass permissions"],
           ["manual", "manual"], ["auto", "auto"]],
};

function isClaude(s) { return s.provider === "claude"; }
// A Claude session started in a terminal: orbitdock watches it and answers its approvals;
// prompts, interrupts and its mode belong to the terminal.
function isPassiveClaude(s) { return isClaude(s) && s.claude_integration_mode === "passive"; }

function renderControls(s) {
  const kind = isClaude(s) ? "claude" : "codex";
  const select = $("#autonomy");
  if (select.dataset.kind !== kind) {
    select.replaceChildren(...AUTONOMY[kind].map(([value, label]) => el("option", { value }, label)));
    select.dataset.kind = kind;
  }
  const autonomy = kind === "claude" ? s.permission_mode : s.approval_policy;
  if (autonomy) select.value = autonomy;
  if (s.sandbox_mode) $("#sandbox").value = s.sandbox_mode;
  const passive = isPassiveClaude(s);
  $("#autonomy-control").hidden = passive;
  $("#sandbox-control").hidden = kind === "claude";  // claude has no sandbox setting
  $("#composer").hidden = passive;
  document.querySelector('[data-action="interrupt"]').hidden = passive;
}

// The thread operations each kind of session takes, as the daemon answers them: a direct
// Codex session takes all; a direct Claude session only fork; a passive Codex session (its
// terminal owns the thread) forks into a direct one; the rest take none.
const OPS = {
  codex: { direct: ["fork", "compact", "rollback", "review", "archive"], passive: ["fork"] },
  claude: { direct: ["fork"], passive: [] },
};

function opsFor(s) {
  const mode = s.codex_integration_mode || s.claude_integration_mode || "direct";
  return new Set((OPS[s.backend || s.provider] || {})[mode] || []);
}

function renderOps(s) {
  const ops = opsFor(s);
  // refused by the daemon while a turn (or a review, a compaction) runs, or once ended
  const busy = s.status === "ended" || s.current_turn_id || s.is_compacting ||
    s.work_status === "working" || s.work_status === "reviewing";
  for (const b of document.querySelectorAll("[data-op]")) {
    const op = b.dataset.op;
    b.hidden = !ops.has(op);
    if (op === "fork") b.disabled = !s.thread_id;  // nothing to fork before a turn ran
    else if (op === "archive") b.disabled = !!busy;
    else b.disabled = !!busy || !!s.is_archived || (op === "rollback" && !(s.turn_count > 0));
  }
  $('[data-op="archive"]').textContent = s.is_archived ? "Unarchive" : "Archive";
  $("#session-ops").hidden = ops.size === 0;
}

function runOp(op, s) {
  const name = nameOf(s);
  if (op === "fork") {
    send({ type: "fork_session", source_session_id: s.id });
  } else if (op === "compact") {
    send({ type: "compact_context", session_id: s.id });
  } else if (op === "rollback") {
    const given = prompt(`Roll back how many turns? (1 to ${s.turn_count})`, "1");
    if (given === null) return;
    const turns = Number(given.trim());
    if (!Number.isInteger(turns) || turns < 1 || turns > s.turn_count) {
      toast(`give a whole number of turns from 1 to ${s.turn_count}`);
      return;
    }
    if (confirm(`Drop the last ${turns} turn(s) of "${name}"? Their messages go; ` +
                "files on disk are NOT reverted.")) {
      send({ type: "rollback_turns", session_id: s.id, num_turns: turns });
    }
  } else if (op === "review") {
    const what = prompt("Review: leave empty for the uncommitted changes, " +
                        "or write instructions for a custom review", "");
    if (what === null) return;
    send(what.trim() ? { type: "review_session", session_id: s.id, target: "custom", value: what.trim() }
                     : { type: "review_session", session_id: s.id, target: "uncommitted" });
  } else if (op === "archive") {
    if (s.is_archived) send({ type: "unarchive_session", session_id: s.id });
    else if (confirm(`Archive "${name}"? It takes no prompt until it is unarchived.`)) {
      send({ type: "archive_session", session_id: s.id });
    }
  }
}

function fmt(n) {
  n = n || 0;
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : `${n}`;
}

function renderPlan() {
  const s = state.session;
  const box = $("#plan");
  if (!s || !s.plan || !s.plan.length) { box.hidden = true; return; }
  box.hidden = false;
  const ol = el("ol");
  for (const step of s.plan) {
    const li = el("li", {}, step.step || step.text || JSON.stringify(step));
    li.dataset.status = step.status || "";
    ol.append(li);
  }
  box.replaceChildren(el("strong", {}, "Plan"), ol);
}

function renderApprovals() {
  const s = state.session;
  const box = $("#approvals");
  if (!s) return;
  box.replaceChildren(...(s.approvals || []).map(renderApproval));
}

function renderApproval(a) {
  const div = el("div", { class: "approval" });
  div.dataset.approvalId = a.id;
  if (a.type === "question" && a.question_prompts) {
    for (const q of a.question_prompts) {
      div.append(el("div", {}, q.question));
      const buttons = el("div", { class: "buttons" });
      for (const o of q.options || []) {
        const b = el("button", {}, o.label);
        b.onclick = () => answer(a, q.id, o.label);
        buttons.append(b);
      }
      const form = el("form", { class: "answer" });
      const input = el("input", { placeholder: "Your answer", "aria-label": "answer" });
      form.append(input, el("button", { type: "submit" }, "Answer"));
      form.onsubmit = (ev) => { ev.preventDefault(); if (input.value) answer(a, q.id, input.value); };
      div.append(buttons, form);
    }
    return div;
  }
  div.append(el("div", {}, a.type === "patch" ? `Apply changes${a.file_path ? " to " + a.file_path : ""}?`
                                                 : `Run ${a.tool_name || "command"}?`));
  if (a.command) div.append(el("pre", {}, el("code", {}, a.command)));
  if (a.diff) div.append(renderDiff(a.diff));
  if (a.reason) div.append(el("div", { class: "meta" }, a.reason));
  const buttons = el("div", { class: "buttons" });
  const approve = el("button", { class: "primary", "data-decision": "approved" }, "Approve (a)");
  const always = el("button", { "data-decision": "approved_for_session" }, "Approve for session");
  const deny = el("button", { class: "danger", "data-decision": "denied" }, "Deny (d)");
  for (const b of [approve, always, deny]) b.onclick = () => decide(a, b.dataset.decision);
  buttons.append(approve, always, deny);
  div.append(buttons);
  return div;
}

function decide(a, decision) {
  send({ type: "approve_tool", session_id: a.session_id, request_id: a.id, decision });
}

function answer(a, questionId, text) {
  send({ type: "answer_question", session_id: a.session_id, request_id: a.id,
         question_id: questionId, answer: text });
}

function domId(id) { return "m-" + id.replace(/[^A-Za-z0-9_-]/g, "_"); }

function renderMessage(m) {
  const li = el("li", { class: "msg" + (m.is_error ? " error" : "") + (m.is_in_progress ? " streaming" : "") });
  li.id = domId(m.id);
  li.dataset.type = m.message_type;
  if (m.message_type === "tool" || m.message_type === "tool_result") {
    const d = el("details", { class: "tool" + (m.is_error ? " failed" : "") });
    const input = summarizeInput(m.tool_input);
    d.append(el("summary", {}, `${m.tool_name || "tool"}${input ? ": " + input : ""}` +
                               (m.duration_ms ? ` (${m.duration_ms} ms)` : "")));
    const out = m.tool_output || m.content || "";
    if (out) d.append(looksLikeDiff(out) ? renderDiff(out) : el("pre", {}, el("code", {}, out)));
    li.append(d);
    return li;
  }
  li.append(el("div", { class: "who" }, m.message_type));
  const body = el("div", { class: "body" });
  if (m.message_type === "assistant") body.innerHTML = markdown(m.content);
  else body.textContent = m.content;
  li.append(body);
  return li;
}

function summarizeInput(input) {
  if (!input) return "";
  try {
    const v = JSON.parse(input);
    if (typeof v === "string") return v;
    return v.command ? [].concat(v.command).join(" ") : v.path || v.file_path || JSON.stringify(v);
  } catch { return input; }
}

function looksLikeDiff(text) {
  return /^(diff --git|--- |\+\+\+ |@@ )/m.test(text);
}

function renderDiff(text) {
  const pre = el("pre", { class: "diff" });
  for (const line of text.split("\n")) {
    const cls = line.startsWith("+") && !line.startsWith("+++") ? "add"
      : line.startsWith("-") && !line.startsWith("---") ? "del" : line.startsWith("@@") ? "hunk" : "";
    pre.append(el("span", cls ? { class: cls } : {}, line + "\n"));
  }
  return pre;
}

// Simple markdown: fenced code, headings, lists, bold, italic, inline code, links.
function markdown(src) {
  const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const inline = (s) => esc(s)
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[^*])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>")
    .replace(/\[([^\]]+)\]\((https?:\/\/[^)\s]+)\)/g, '<a href="$2" target="_blank" rel="noopener">$1</a>');
  const out = [];
  const lines = (src || "").split("\n");
  let list = null;
  const closeList = () => { if (list) { out.push(`</${list}>`); list = null; } };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = line.match(/^```(\w*)/);
    if (fence) {
      closeList();
      const code = [];
      while (++i < lines.length && !lines[i].startsWith("```")) code.push(lines[i]);
      const text = code.join("\n");
      out.push(fence[1] === "diff" || looksLikeDiff(text) ? renderDiff(text).outerHTML
                                                          : `<pre><code>${esc(text)}</code></pre>`);
      continue;
    }
    const h = line.match(/^(#{1,4})\s+(.*)/);
    const ul = line.match(/^\s*[-*]\s+(.*)/);
    const ol = line.match(/^\s*\d+\.\s+(.*)/);
    if (h) { closeList(); out.push(`<h${h[1].length + 2}>${inline(h[2])}</h${h[1].length + 2}>`); }
    else if (ul || ol) {
      const kind = ul ? "ul" : "ol";
      if (list !== kind) { closeList(); out.push(`<${kind}>`); list = kind; }
      out.push(`<li>${inline((ul || ol)[1])}</li>`);
    } else if (!line.trim()) { closeList(); }
    else { closeList(); out.push(`<p>${inline(line)}</p>`); }
  }
  closeList();
  return out.join("");
}

function scrollDown(force) {
  const c = $("#conversation");
  if (force || c.scrollHeight - c.scrollTop - c.clientHeight < 200) c.scrollTop = c.scrollHeight;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

let toastTimer = null;
function toast(text) {
  const t = $("#toast");
  t.textContent = text;
  t.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => t.classList.remove("show"), 4000);
}

// ------------------------------------------------------------------ controls
$("#composer").onsubmit = (ev) => {
  ev.preventDefault();
  const s = state.session;
  const text = $("#prompt").value.trim();
  if (!s || !text) return;
  const type = s.work_status === "working" ? "steer_turn" : "send_message";
  if (send({ type, session_id: s.id, content: text })) $("#prompt").value = "";
};
$("#prompt").onkeydown = (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("#composer").requestSubmit(); }
};
for (const b of document.querySelectorAll("[data-action]")) {
  b.onclick = () => {
    const s = state.session;
    if (!s) return;
    const action = b.dataset.action;
    if (action === "rename") {
      const name = prompt("Session name (empty clears)", s.custom_name || "");
      if (name !== null) send({ type: "rename_session", session_id: s.id, name: name || null });
    } else {
      send({ type: `${action}_session`, session_id: s.id });
    }
  };
}
for (const b of document.querySelectorAll("[data-op]")) {
  b.onclick = () => state.session && runOp(b.dataset.op, state.session);
}
$("#autonomy").onchange = (ev) => state.session &&
  send({ type: "update_session_config", session_id: state.session.id,
         [isClaude(state.session) ? "permission_mode" : "approval_policy"]: ev.target.value });
$("#sandbox").onchange = (ev) => state.session &&
  send({ type: "update_session_config", session_id: state.session.id, sandbox_mode: ev.target.value });
$("#back").onclick = () => document.body.classList.remove("in-session");

document.addEventListener("keydown", (ev) => {
  if (ev.target.closest("input, textarea, select") || ev.metaKey || ev.ctrlKey || ev.altKey) return;
  if (ev.key === "j" || ev.key === "k") {
    const ids = sortedSessions().map((s) => s.id);
    if (!ids.length) return;
    const at = ids.indexOf(state.current);
    const next = ev.key === "j" ? Math.min(ids.length - 1, at + 1) : Math.max(0, at - 1);
    select(ids[at === -1 ? 0 : next]);
  } else if ((ev.key === "a" || ev.key === "d") && state.session) {
    const head = (state.session.approvals || []).find((a) => a.type !== "question");
    if (head) decide(head, ev.key === "a" ? "approved" : "denied");
  }
});

connect();
