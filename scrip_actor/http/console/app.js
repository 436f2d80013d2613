// The console's entry point: the key login, and a hash router (#/page/id?query) over the pages.
import { ApiError, forgetKey, get, savedKey, saveKey } from "./api.js";
import { el, errorBox, show } from "./dom.js";
import { eventPage, eventsPage, journalPage, participantsPage, programsPage } from "./pages_data.js";
import { overviewPage } from "./pages_overview.js";
import { rulePage, rulesPage } from "./pages_rules.js";

const view = document.getElementById("view");
const nav = document.getElementById("nav");

const ROUTES = {
  programs: (id, query) => programsPage(view, query),
  participants: (id, query) => participantsPage(view, query),
  events: (id, query) => (id ? eventPage(view, id) : eventsPage(view, query)),
  journal: (id, query) => journalPage(view, query),
  rules: (id, query) => (id ? rulePage(view, id) : rulesPage(view, query)),
  overview: () => overviewPage(view),
};

function loginForm(message = undefined) {
  nav.hidden = true;
  const input = el("input", { type: "password", id: "api-key", autocomplete: "off", size: 40, "aria-label": "API key" });
  const form = el("form", { id: "login" },
    el("h1", {}, "Sign in"),
    el("p", { class: "muted" }, "The key is kept in this tab's session storage only, and sent as an Authorization header."),
    el("label", {}, "API key ", input), el("button", { type: "submit" }, "Open console"),
    message ? el("div", { class: "error", role: "alert", id: "login-error" }, message) : null);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    saveKey(input.value.trim());
    try {
      await get("/v1/programs", { limit: 1 });
    } catch (error) {
      forgetKey();
      const refused = error instanceof ApiError && error.status === 401;
      show(view, loginForm(refused ? "That API key was refused (401 unauthorized). Check it and try again." : String(error)));
      return;
    }
    if (!location.hash || location.hash === "#/" || location.hash === "#") location.hash = "#/programs";
    else route();
  });
  setTimeout(() => input.focus(), 0);
  return form;
}

async function route() {
  if (!savedKey()) return show(view, loginForm());
  nav.hidden = false;
  const [path, queryText = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [page = "programs", id] = path.split("/").map(decodeURIComponent);
  for (const anchor of nav.querySelectorAll("a")) anchor.classList.toggle("active", anchor.hash === `#/${page}`);
  const render = ROUTES[page] ?? ROUTES.programs;
  show(view, el("p", { class: "muted" }, "loading…"));
  try {
    await render(id, new URLSearchParams(queryText));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      forgetKey();
      return show(view, loginForm("The API key is no longer accepted (401 unauthorized)."));
    }
    show(view, errorBox(error));
  }
}

document.getElementById("logout").addEventListener("click", () => {
  forgetKey();
  route();
});
window.addEventListener("hashchange", route);
route();
