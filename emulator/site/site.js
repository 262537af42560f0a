// The demo site's only script (a file, so the pages' Content-Security-Policy allows no inline
// script). Every request is same-origin and sends the cookies: the gateway's login cookie on
// /oauth/token, then the `sid` cookie it sets, which the script itself cannot read (HttpOnly).
"use strict";

function show(id, text) {
  const element = document.getElementById(id);
  if (text !== undefined) element.textContent = text;
  element.hidden = false;
}

async function userinfo() {
  const answer = await fetch("/userinfo", {
    credentials: "same-origin",
    headers: { accept: "application/json" },
  });
  return answer.ok ? answer.json() : null;
}

function showUser(info) {
  show("status", "Logged in as " + (info.name || info.email || info.sub) + ".");
  show("userinfo", JSON.stringify(info, null, 2));
  show("logged-in");
}

async function home() {
  const info = await userinfo();
  if (info) showUser(info);
}

async function callback() {
  const params = new URLSearchParams(window.location.search);
  // The code is single-use: keep it out of the history and of any reload.
  window.history.replaceState(null, "", window.location.pathname);
  const failed = (message) => {
    show("status", "Login failed.");
    show("error", message);
    show("login");
  };
  if (params.has("error")) {
    failed(params.get("error") + ": " + (params.get("error_description") || ""));
    return;
  }
  const token = await fetch("/oauth/token", {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ code: params.get("code"), state: params.get("state") }),
  });
  if (!token.ok) {
    failed("/oauth/token answered " + token.status + ": " + (await token.text()));
    return;
  }
  // Where the login started (the gateway's stored `redirect`): a path on this site only.
  const next = token.headers.get("location");
  if (next && next.startsWith("/") && !next.startsWith("//") && !next.includes("\\")) {
    document.getElementById("continue").setAttribute("href", next);
  }
  const info = await userinfo();
  if (!info) {
    failed("/userinfo refused the new session");
    return;
  }
  show("userinfo-title");
  showUser(info);
}

document.addEventListener("DOMContentLoaded", () => {
  const run = document.body.dataset.page === "callback" ? callback : home;
  run().catch((error) => show("error", String(error)));
});
