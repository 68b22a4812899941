// The admin pages: agents and skills (a new agent's token shown once), numbers, plugins, backlogs, and the
// consent ledger export.

import { ApiError, api, currentSession, signIn, signOut } from "./api.js";
import { byId, el } from "./dom.js";

function showSignIn(message) {
  byId("sign-in").hidden = false;
  byId("sign-in-error").textContent = message;
  byId("token").focus();
}

byId("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const session = await signIn(byId("token").value);
    if (session.role !== "admin") {
      await signOut();
      showSignIn("That is an agent's token: the administration needs an admin token.");
      return;
    }
  } catch (error) {
    showSignIn(error.status === 401 ? "That token is not valid." : error.message);
    return;
  }
  byId("token").value = "";
  byId("sign-in").hidden = true;
  await load();
});

byId("sign-out").addEventListener("click", async () => {
  await signOut();
  location.reload();
});

function rows(id, items, cells) {
  byId(id).replaceChildren(...items.map((item) => el("tr", {}, cells(item).map((cell) => el("td", { text: String(cell) })))));
}

async function load() {
  byId("me").hidden = false;
  byId("panels").hidden = false;
  const [overview, agents, skills] = await Promise.all([
    api("GET", "/api/overview"), api("GET", "/api/agents"), api("GET", "/api/skills")]);
  byId("outbox-depth").textContent = String(overview.outbox);
  byId("inbox-depth").textContent = String(overview.inbox);
  rows("queues", skills.items, (s) => [s.name, overview.queues[s.name] || 0, s.online_agents]);
  rows("agents", agents.items, (a) => [a.name, a.status, a.skills.join(", ") || "none",
    `${a.open_conversations} of ${a.max_concurrent}`]);
  rows("skills", skills.items, (s) => [s.name, s.description, s.agents]);
  rows("numbers", overview.numbers, (n) => [n.number, n.provider, n.skill]);
  rows("plugins", overview.plugins, (p) => [p.name, p.distribution ? `${p.distribution} ${p.version || ""}` : "built in",
    p.enabled ? "yes" : "no"]);
  byId("ledger").hidden = !overview.plugins.some((p) => p.name === "compliance" && p.enabled);
}

// The ledger is fetched with the session's bearer token (a plain link could not carry it) and saved from memory.
byId("ledger").addEventListener("click", async (event) => {
  event.preventDefault();
  byId("ledger-error").textContent = "";
  const response = await fetch("/api/compliance/ledger.csv", {
    headers: { authorization: `Bearer ${currentSession().token}` }, cache: "no-store",
  });
  if (!response.ok) {
    byId("ledger-error").textContent = `The export failed (HTTP ${response.status}).`;
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: "consent-ledger.csv" });
  document.body.append(link);
  link.click();
  link.remove();
  URL.revokeObjectURL(url);
});

function formError(id, failure) {
  byId(id).textContent = failure instanceof ApiError ? `${failure.detail} (${failure.code})` : String(failure);
}

byId("agent-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const skills = String(form.get("skills") || "").split(",").map((s) => s.trim()).filter(Boolean);
  try {
    const created = await api("POST", "/api/agents", {
      name: form.get("name"), skills, max_concurrent: Number(form.get("max_concurrent") || 3),
    });
    byId("agent-error").textContent = "";
    byId("agent-token").hidden = false;
    byId("agent-token-value").textContent = created.token;
    event.target.reset();
    await load();
  } catch (failure) {
    formError("agent-error", failure);
  }
});

byId("skill-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    await api("POST", "/api/skills", { name: form.get("name"), description: form.get("description") || "" });
    byId("skill-error").textContent = "";
    event.target.reset();
    await load();
  } catch (failure) {
    formError("skill-error", failure);
  }
});

const session = currentSession();
if (session && session.role === "admin") load().catch((failure) => formError("ledger-error", failure));
else showSignIn("");
