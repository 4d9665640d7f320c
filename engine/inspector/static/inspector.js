// The inspector's small script: diffs and counts loaded on demand, actions
// sent without a reload, the live feed, the diagram, a few keys. Every page
// works without it, except the live feed and the diagram.
"use strict";

function say(text, ok) {
  const status = document.getElementById("status");
  if (!status) return;
  status.textContent = text;
  status.className = "status " + (ok ? "ok" : "bad");
}

async function load(target, url) {
  try {
    const response = await fetch(url, { headers: { Accept: "text/html" } });
    target.innerHTML = await response.text();
  } catch (error) {
    target.textContent = "could not load: " + error;
  }
}

function diffs() {
  document.querySelectorAll("details.diff[data-src]").forEach((details) => {
    if (details.dataset.bound) return;
    details.dataset.bound = "1";
    const opened = () => {
      if (details.open && !details.dataset.loaded) {
        details.dataset.loaded = "1";
        load(details.querySelector(".diff-body"), details.dataset.src);
      }
    };
    details.addEventListener("toggle", opened);
    // Opened before this deferred script ran (a quick reader, a keyboard):
    // its toggle event may have gone by unheard.
    opened();
  });
}

function counts() {
  document.querySelectorAll("section.counts [data-src]").forEach((box) => load(box, box.dataset.src));
}

function actions() {
  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.matches("form[data-action]")) return;
    event.preventDefault();
    const button = form.querySelector("button");
    if (button) button.disabled = true;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
      });
      const answer = await response.json();
      say(answer.message, answer.ok);
    } catch (error) {
      say("the action did not reach the inspector: " + error, false);
    } finally {
      if (button) button.disabled = false;
    }
  });
}

function live() {
  const url = document.body.dataset.live;
  const target = document.querySelector("[data-live-target]");
  if (!url || !target || !window.EventSource) return;
  const source = new EventSource(url);
  source.addEventListener("logged", (message) => {
    const data = JSON.parse(message.data);
    if (document.getElementById("seq-" + data.seq) && target.id === "timeline") return;
    const holder = document.createElement("tbody");
    holder.innerHTML = data.html.trim();
    const row = holder.firstElementChild;
    row.classList.add("fresh");
    target.prepend(row);
    const empty = document.getElementById("live-empty");
    if (empty) empty.hidden = true;
    diffs();
  });
}

async function draw(node) {
  await window.mermaid.run({ nodes: [node] });
  const svg = node.querySelector("svg");
  if (svg) {
    // Shrunk to fit, a big chart's labels cannot be read: at most 320px high,
    // never below half its size (then its frame scrolls).
    const box = svg.viewBox.baseVal;
    if (box && box.width) {
      const scale = Math.max(0.5, Math.min(1, 320 / box.height));
      svg.setAttribute("width", String(Math.ceil(box.width * scale)));
      svg.setAttribute("height", String(Math.ceil(box.height * scale)));
    }
    svg.removeAttribute("style");
    const lit = svg.querySelector("g.active");
    const figure = node.closest("figure, details");
    if (lit && figure) {
      const a = lit.getBoundingClientRect();
      const f = figure.getBoundingClientRect();
      figure.scrollLeft += a.left + a.width / 2 - (f.left + f.width / 2);
      figure.scrollTop += a.top + a.height / 2 - (f.top + f.height / 2);
    }
  }
  node.dataset.rendered = "1";
}

async function diagram() {
  const node = document.getElementById("diagram");
  if (!node || !window.mermaid) return;
  window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "neutral" });
  const full = document.getElementById("full-diagram");
  // The whole chart is drawn only when asked for: a big chart takes a while.
  full.closest("details").addEventListener("toggle", () => {
    if (!full.dataset.rendered) draw(full);
  });
  await draw(node);
  const svg = node.querySelector("svg");
  if (svg) {
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "Chart diagram; " + document.getElementById("active-list").textContent);
  }
}

function keys() {
  // "/" jumps to the search box, as in most consoles; Escape leaves a field.
  document.addEventListener("keydown", (event) => {
    const field = event.target.closest("input, select, textarea");
    if (event.key === "/" && !field) {
      const search = document.getElementById("q");
      if (search) {
        event.preventDefault();
        search.focus();
      }
    } else if (event.key === "Escape" && field) {
      field.blur();
    }
  });
}

function start() {
  diffs();
  counts();
  actions();
  live();
  keys();
  if (document.getElementById("diagram")) {
    const script = document.createElement("script");
    script.src = document.body.dataset.base + "/static/mermaid.min.js";
    script.onload = diagram;
    document.head.append(script);
  }
}

// Deferred, it normally runs before DOMContentLoaded; loaded later (a slow
// network, a cache), the page is already there to start on.
if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", start);
} else {
  start();
}
