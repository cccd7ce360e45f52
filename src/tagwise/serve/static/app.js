// tagwise serve: the label queue (keyboard), the review queue (keyboard), the team page's decisions
// and the retrain button.
// Text reaches the page only through the server's escaped HTML or through textContent here.
"use strict";
(function () {
  // A signed-in page sends its session's CSRF token (the login sets it in a readable cookie) with every
  // request; annotations are stored under the signed-in user, so bodies name no annotator.
  const port = location.port || "default";
  function csrfToken() {
    const all = document.cookie.split("; ").filter((c) => c.startsWith("tagwise_csrf_"));
    // this port's cookie; else the only one there is (a proxy that rewrites the Host's port)
    const found = all.find((c) => c.startsWith(`tagwise_csrf_${port}=`)) || (all.length === 1 ? all[0] : null);
    return found ? decodeURIComponent(found.slice(found.indexOf("=") + 1)) : null;
  }
  const status = (msg) => { const el = document.getElementById("status"); if (el) el.textContent = msg; };

  async function api(method, url, body) {
    const headers = {"Content-Type": "application/json"};
    const csrf = csrfToken();
    if (csrf) headers["X-CSRF-Token"] = csrf;
    const r = await fetch(url, {method, headers, credentials: "same-origin",
                                body: body === undefined ? undefined : JSON.stringify(body)});
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.detail ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)) : r.statusText);
    return data;
  }

  // -- label queue ----------------------------------------------------------------------------
  // Two marks per label: "guess" (the model's, outlined) and "on" (the person's choice, filled).
  // Only choices are saved; G turns the guesses into choices. The labels are a tree: choosing a label
  // chooses its parents (a child implies its parent), dropping one drops what is below it.
  function labelQueue(root) {
    const items = Array.from(root.querySelectorAll("article.item"));
    const toggles = Array.from(root.querySelectorAll("button.toggle"));
    const filter = document.getElementById("label-filter");
    const progress = document.getElementById("progress");
    const guide = document.getElementById("guide");
    const saved = [];  // [{annotationId, index}] for U (undo)
    const skipped = new Set();
    const windowSize = parseInt(root.dataset.window || "1", 10);
    const anchor = document.getElementById("label-filter");
    let index = 0;
    let done = parseInt(progress.dataset.done, 10), total = parseInt(progress.dataset.total, 10);

    function showProgress() { progress.textContent = `${done} of ${total} labeled by you`; }
    function show(i) {
      items.forEach((el, k) => { el.hidden = k !== i; });
      const item = items[i];
      toggles.forEach((t) => { t.classList.remove("on", "guess"); t.querySelector(".score").textContent = ""; });
      if (!item) return;
      const guess = new Set(JSON.parse(item.dataset.guess));
      const scores = JSON.parse(item.dataset.scores);
      toggles.forEach((t) => {
        t.classList.toggle("guess", guess.has(t.dataset.label));
        const s = scores[t.dataset.label];
        t.querySelector(".score").textContent = s === undefined ? "" : s.toFixed(2);
      });
    }
    function addItem(it) {
      const a = document.createElement("article");
      a.className = "item"; a.hidden = true;
      a.dataset.exampleId = it.example_id; a.dataset.origin = it.origin; a.dataset.source = it.source;
      a.dataset.guess = JSON.stringify(it.labels); a.dataset.scores = JSON.stringify(it.scores);
      const text = document.createElement("p"); text.className = "text"; text.textContent = it.display_text || it.text;
      const prov = document.createElement("p"); prov.className = "prov";
      prov.textContent = `source ${it.source} · split ${it.split} · language ${it.language} · id ${it.source_example_id} · why: ${it.reason}`;
      a.append(text, prov);
      root.insertBefore(a, anchor);
      items.push(a);
    }
    // the next examples from the server (the label queue leases them to this person)
    async function refill() {
      const have = new Set(items.map((el) => el.dataset.exampleId));
      const params = new URLSearchParams(window.location.search);
      params.set("kind", "label"); params.set("limit", String(windowSize + skipped.size + (items.length - index)));
      try {
        const q = await api("GET", "/api/queue?" + params.toString());
        q.items.filter((it) => !have.has(String(it.example_id)) && !skipped.has(it.example_id)).forEach(addItem);
        done = q.done; total = Math.max(q.total, done); showProgress();
        const empty = document.getElementById("queue-empty");
        if (empty) empty.hidden = index < items.length;
        if (index >= items.length) {
          status(q.message || "Nothing left for you right now: reload later.");
          // the server prepares the next batch in the background: ask again shortly, then show it
          if (q.preparing) setTimeout(async () => { if (index >= items.length) { await refill(); show(index); } }, 3000);
        }
      } catch (e) { status("error: " + e.message); }
    }
    async function next() {
      index += 1;
      if (index >= items.length) await refill();
      show(index);
    }
    function current() { return items[index]; }
    function chosen() { return toggles.filter((t) => t.classList.contains("on")).map((t) => t.dataset.label); }
    const byLabel = new Map(toggles.map((t) => [t.dataset.label, t]));
    function choose(t, on) {
      t.classList.toggle("on", on);
      if (on) {
        JSON.parse(t.dataset.ancestors || "[]").forEach((a) => { const p = byLabel.get(a); if (p) p.classList.add("on"); });
      } else {
        const li = t.closest("li");
        if (li) li.querySelectorAll("button.toggle").forEach((d) => d.classList.remove("on"));
      }
    }
    function flip(t) { choose(t, !t.classList.contains("on")); }
    function takeGuesses() {
      const n = toggles.filter((t) => t.classList.contains("guess")).map((t) => choose(t, true)).length;
      status(n ? `took the model's ${n} guess${n > 1 ? "es" : ""}: Enter saves` : "the model guessed no label");
    }
    async function save() {
      const item = current();
      if (!item) return;
      const labels = chosen();
      // until this save and the move to the next item are done, the status must not still read the last
      // save's "saved": a key pressed meanwhile (U) would act on a save in flight and be overwritten by it
      status("saving…");
      try {
        const r = await api("POST", "/api/annotations", {example_id: parseInt(item.dataset.exampleId, 10), labels,
                                                          origin: item.dataset.origin});
        saved.push({annotationId: r.annotation_id, index});
        done += 1; showProgress();
        const msg = `saved #${r.annotation_id}: ${labels.join(", ") || "(no label)"}`;
        await next();
        status(msg);
      } catch (e) { status("error: " + e.message); }
    }
    async function undo() {
      const last = saved.pop();
      if (!last) { status("nothing to undo"); return; }
      try {
        await api("POST", `/api/annotations/${last.annotationId}/undo`);
        done -= 1; showProgress();
        index = last.index; show(index);
        status(`undid #${last.annotationId}`);
      } catch (e) { status("error: " + e.message); }
    }
    async function skip() {
      const item = current();
      if (!item) return;
      const id = parseInt(item.dataset.exampleId, 10);
      skipped.add(id);
      api("POST", "/api/queue/release", {example_id: id}).catch(() => {});  // someone else may take it
      await next(); status("skipped");
    }
    function toggleGuide(open) { if (guide) guide.hidden = open === undefined ? !guide.hidden : !open; }
    toggles.forEach((t) => t.addEventListener("click", () => flip(t)));
    // the search box keeps a label that matches, with its parents (shown for context, dimmed)
    const nodes = Array.from(root.querySelectorAll("#toggles li")).reverse();  // children before parents
    filter.addEventListener("input", () => {
      const q = filter.value.toLowerCase();
      nodes.forEach((li) => {
        const self = q === "" || li.dataset.label.toLowerCase().includes(q);
        const below = Array.from(li.querySelectorAll(":scope > ul > li")).some((c) => !c.hidden);
        li.hidden = !(self || below);
        li.querySelector(":scope > button.toggle").classList.toggle("context", !self);
      });
    });
    filter.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {  // Enter in the filter toggles the only (or first) matching label
        ev.preventDefault();
        const first = toggles.find((t) => !t.closest("li").hidden && !t.classList.contains("context"));
        if (first) flip(first);
        filter.value = ""; filter.dispatchEvent(new Event("input")); filter.blur();
      } else if (ev.key === "Escape") { filter.blur(); }
    });
    document.addEventListener("keydown", (ev) => {
      if (ev.target.closest && ev.target.closest("input, select, textarea")) return;
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const key = ev.key.toLowerCase();
      if (ev.key === "?") { ev.preventDefault(); toggleGuide(); return; }
      if (ev.key === "Escape") { toggleGuide(false); return; }
      if (ev.key === "Enter") { ev.preventDefault(); save(); return; }
      if (key === "s") { skip(); return; }
      if (key === "u") { undo(); return; }
      if (key === "g") { takeGuesses(); return; }
      if (ev.key === "/") { ev.preventDefault(); filter.focus(); return; }
      const t = toggles.find((b) => b.dataset.key === key);
      if (t) flip(t);
    });
    showProgress(); show(0);
    if (!items.length && root.dataset.preparing === "true") refill().then(() => show(index));
  }

  // -- review queue ---------------------------------------------------------------------------
  function reviewQueue(root) {
    const counter = document.querySelector("#review-progress .count");
    const prog = document.getElementById("review-progress");
    let decided = prog ? parseInt(prog.dataset.done, 10) : 0;
    const total = prog ? parseInt(prog.dataset.total, 10) : 0;
    const rows = Array.from(root.querySelectorAll("tr.review"));
    const decisions = [];  // [{row, annotationId}] for U
    let at = 0;
    function count(delta) { decided += delta; if (counter) counter.textContent = `${decided} of ${total} rows decided`; }
    function focus(i) {
      if (!rows.length) return;
      at = Math.max(0, Math.min(rows.length - 1, i));
      rows.forEach((r, k) => r.classList.toggle("current", k === at));
      rows[at].focus({preventScroll: true}); rows[at].scrollIntoView({block: "nearest"});
    }
    async function undoRow(row) {
      const id = row.dataset.annotationId;
      if (!id) return;
      try {
        await api("POST", `/api/annotations/${id}/undo`);
        row.classList.remove("decided"); row.querySelector(".decision").textContent = " undone";
        delete row.dataset.annotationId; count(-1); status(`undid #${id}`);
      } catch (e) { status("error: " + e.message); }
    }
    async function decide(row, labels, what) {
      if (row.dataset.annotationId) { status("already decided: U undoes it"); return; }
      try {
        const r = await api("POST", "/api/annotations", {example_id: parseInt(row.dataset.exampleId, 10), labels,
                                                          origin: row.dataset.origin});
        row.classList.add("decided");
        row.dataset.annotationId = r.annotation_id;
        decisions.push(row); count(1);
        row.querySelector(".decision").textContent = ` ${what} (#${r.annotation_id})`;
        const undoBtn = document.createElement("button");
        undoBtn.textContent = "Undo"; undoBtn.className = "undo-row";
        undoBtn.addEventListener("click", () => undoRow(row).then(() => undoBtn.remove()));
        row.querySelector(".decision").appendChild(undoBtn);
        status(`${what}: saved #${r.annotation_id}`);
        if (rows[at] === row) focus(at + 1);
      } catch (e) { status("error: " + e.message); }
    }
    function saveEdit(row) {
      const labels = Array.from(row.querySelectorAll(".editor input:checked")).map((b) => b.value);
      row.querySelector(".editor").hidden = true;
      decide(row, labels, "edited");
    }
    rows.forEach((row, k) => {
      row.addEventListener("click", () => { at = k; rows.forEach((r, j) => r.classList.toggle("current", j === k)); });
      row.querySelector(".accept").addEventListener("click", () => decide(row, JSON.parse(row.dataset.suggested), "accepted"));
      row.querySelector(".keep").addEventListener("click", () => decide(row, JSON.parse(row.dataset.given), "kept"));
      row.querySelector(".edit").addEventListener("click", () => { row.querySelector(".editor").hidden = false; });
      row.querySelector(".save-edit").addEventListener("click", () => saveEdit(row));
    });
    document.addEventListener("keydown", (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.altKey || !rows.length) return;
      const row = rows[at];
      const editing = row && !row.querySelector(".editor").hidden;
      if (ev.target.closest && ev.target.closest("select, textarea, input:not([type=checkbox])")) return;
      const key = ev.key.toLowerCase();
      if (editing && ev.key === "Enter") { ev.preventDefault(); saveEdit(row); return; }
      if (editing && ev.key === "Escape") { row.querySelector(".editor").hidden = true; return; }
      if (key === "j" || ev.key === "ArrowDown") { ev.preventDefault(); focus(at + 1); }
      else if (key === "k" || ev.key === "ArrowUp") { ev.preventDefault(); focus(at - 1); }
      else if (key === "a") decide(row, JSON.parse(row.dataset.suggested), "accepted");
      else if (key === "g") decide(row, JSON.parse(row.dataset.given), "kept");
      else if (key === "e") { row.querySelector(".editor").hidden = false; const b = row.querySelector(".editor input"); if (b) b.focus(); }
      else if (key === "u") { const last = decisions.pop(); if (last) undoRow(last).then(() => focus(rows.indexOf(last))); else status("nothing to undo"); }
    });
    focus(0);
    document.querySelectorAll("#history button.undo").forEach((b) => b.addEventListener("click", async () => {
      const id = b.closest("tr").dataset.annotationId;
      try { await api("POST", `/api/annotations/${id}/undo`); b.replaceWith(document.createTextNode("undone")); status(`undid #${id}`); }
      catch (e) { status("error: " + e.message); }
    }));
  }

  // -- team page: a reviewer settles a disagreement -------------------------------------------------
  // the figures follow the team's work live: /api/team every 10 s, the tables rebuilt with textContent
  function teamLive() {
    const fmt = (x) => (x === null || x === undefined ? "—" : x.toFixed(3));
    function fill(table, rows, cells) {
      table.querySelectorAll("tr:not(:first-child)").forEach((tr) => tr.remove());
      rows.forEach(([key, attr, values]) => {
        const tr = document.createElement("tr");
        tr.dataset[attr] = key;
        values.forEach((v, k) => {
          const td = document.createElement("td");
          td.textContent = v; if (cells[k]) td.className = cells[k];
          tr.appendChild(td);
        });
        table.appendChild(tr);
      });
    }
    async function refresh() {
      try {
        const t = await api("GET", "/api/team");
        const people = Object.entries(t.annotators);
        document.getElementById("team-progress").textContent =
          `${t.progress.complete} of ${t.progress.examples} queued examples have ${t.overlap} judgement${t.overlap > 1 ? "s" : ""} · ` +
          `${t.n_judgements} judgements by ${people.length} people`;
        if (people.length) {
          fill(document.getElementById("people"), people.map(([n, a]) => [n, "person",
            [n, fmt(a.quality), a.n_examples, a.done, a.remaining]]), ["", "quality"]);
        }
        const labels = Object.entries(t.labels);
        if (labels.length) {
          fill(document.getElementById("agreement"), labels.map(([n, l]) => [n, "label", [n, fmt(l.alpha), l.positives]]),
               ["", "alpha"]);
        }
      } catch (e) { status("could not refresh: " + e.message); }
    }
    setInterval(refresh, 10000);
  }

  function teamPage() {
    teamLive();
    document.querySelectorAll("#disagreements .dispute").forEach((box) => {
      const button = box.querySelector("button.adjudicate");
      if (!button) return;
      button.addEventListener("click", async () => {
        const labels = Array.from(box.querySelectorAll(".decide input:checked")).map((b) => b.value);
        try {
          const r = await api("POST", "/api/adjudications", {example_id: parseInt(box.dataset.exampleId, 10), labels});
          box.classList.add("decided"); button.disabled = true;
          box.querySelector(".decision").textContent = ` decided #${r.annotation_id}: ${labels.join(", ") || "(no label)"}`;
          status(`decided #${r.annotation_id}`);
        } catch (e) { status("error: " + e.message); }
      });
    });
  }

  // -- model page -----------------------------------------------------------------------------
  function modelPage() {
    const button = document.getElementById("retrain");
    const bar = document.getElementById("job-progress");
    const stage = document.getElementById("job-stage");
    button.addEventListener("click", async () => {
      button.disabled = true; bar.hidden = false;
      try {
        const {job_id} = await api("POST", "/api/train", {});
        for (;;) {
          const job = await api("GET", `/api/jobs/${job_id}`);
          bar.value = job.progress; stage.textContent = `${job.state}: ${job.stage}`;
          if (job.state === "done") {
            const r = job.result || {};
            stage.textContent = r.mode_note || `done: ${r.mode}`;
            setTimeout(() => window.location.reload(), r.mode_changed ? 1500 : 0);
            return;
          }
          if (job.state === "failed") { stage.textContent = "failed: " + job.error; button.disabled = false; return; }
          await new Promise((res) => setTimeout(res, 500));
        }
      } catch (e) { stage.textContent = "error: " + e.message; button.disabled = false; }
    });
  }

  // -- taxonomy page (admins): each form is one change through its JSON route; the page then reloads --------
  function taxonomyPage() {
    const KEY = "tagwise-taxonomy-status";
    const say = (msg) => { const el = document.getElementById("tax-status"); if (el) el.textContent = msg; };
    const kept = sessionStorage.getItem(KEY);
    if (kept) { say(kept); sessionStorage.removeItem(KEY); }
    function done(msg) { sessionStorage.setItem(KEY, msg); window.location.reload(); }
    function describe(c) {
      const r = c.result || {};
      let msg = `${c.kind} #${c.id}: ${r.labels_before} → ${r.labels_after} labels`;
      if (r.n_queued) msg += ` · ${r.n_queued} examples queued for labeling the new labels`;
      if (c.train_suggested) msg += " · the model serves the new names; retrain on the Model page when ready";
      return msg;
    }
    document.querySelectorAll("form.change").forEach((form) => form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = {};
      form.querySelectorAll("[name]").forEach((el) => {
        if (el.type === "checkbox") body[el.name] = el.checked;
        else if (el.multiple) body[el.name] = Array.from(el.selectedOptions).map((o) => o.value);
        else if (el.dataset.list === "true") body[el.name] = el.value.split(",").map((x) => x.trim()).filter(Boolean);
        else body[el.name] = el.value.trim() === "" ? null : el.value.trim();
      });
      try { done(describe(await api("POST", `/api/taxonomy/${form.dataset.kind}`, body))); }
      catch (e) { say("error: " + e.message); }
    }));
    document.querySelectorAll("button.undo-change").forEach((b) => b.addEventListener("click", async () => {
      try {
        const r = await api("POST", "/api/taxonomy/undo", {to: parseInt(b.dataset.to, 10)});
        done(`undid ${r.undone.map((c) => `${c.kind} #${c.id}`).join(", ")}`);
      } catch (e) { say("error: " + e.message); }
    }));
  }

  // -- every page: a browser session signs out (the server forgets the session; the cookies go) --------
  const signOut = document.getElementById("sign-out");
  if (signOut) signOut.addEventListener("click", async () => {
    try { await api("POST", "/api/logout", {}); window.location.assign("/login"); }
    catch (e) { status("error: " + e.message); }
  });

  const page = document.body.dataset.page;
  if (page === "label" && document.getElementById("labeler")) labelQueue(document.getElementById("labeler"));
  if (page === "review" && document.getElementById("reviewer")) reviewQueue(document.getElementById("reviewer"));
  if (page === "model") modelPage();
  if (page === "team") teamPage();
  if (page === "taxonomy") taxonomyPage();
})();
