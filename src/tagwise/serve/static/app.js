// tagwise serve: the label queue (keyboard), the review queue and the retrain button.
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
  function labelQueue(root) {
    const items = Array.from(root.querySelectorAll("article.item"));
    const toggles = Array.from(root.querySelectorAll("button.toggle"));
    const filter = document.getElementById("label-filter");
    const progress = document.getElementById("progress");
    const saved = [];  // [{annotationId, index}] for U (undo)
    let index = 0;
    let done = parseInt(progress.dataset.done, 10), total = parseInt(progress.dataset.total, 10);

    function showProgress() { progress.textContent = `${done} of ${total} labeled in this batch`; }
    function show(i) {
      items.forEach((el, k) => { el.hidden = k !== i; });
      const item = items[i];
      if (!item) { status("Batch finished: reload for the next one."); return; }
      const guess = new Set(JSON.parse(item.dataset.guess));
      const scores = JSON.parse(item.dataset.scores);
      toggles.forEach((t) => {
        t.classList.toggle("on", guess.has(t.dataset.label));
        const s = scores[t.dataset.label];
        t.querySelector(".score").textContent = s === undefined ? "" : s.toFixed(2);
      });
    }
    function current() { return items[index]; }
    function chosen() { return toggles.filter((t) => t.classList.contains("on")).map((t) => t.dataset.label); }
    async function save() {
      const item = current();
      if (!item) return;
      const labels = chosen();
      try {
        const r = await api("POST", "/api/annotations", {example_id: parseInt(item.dataset.exampleId, 10), labels,
                                                          origin: item.dataset.origin});
        saved.push({annotationId: r.annotation_id, index});
        done += 1; showProgress();
        status(`saved #${r.annotation_id}: ${labels.join(", ") || "(no label)"}`);
        index += 1; show(index);
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
    function skip() { index += 1; show(index); status("skipped"); }
    toggles.forEach((t) => t.addEventListener("click", () => t.classList.toggle("on")));
    filter.addEventListener("input", () => {
      const q = filter.value.toLowerCase();
      toggles.forEach((t) => { t.hidden = q !== "" && !t.dataset.label.toLowerCase().includes(q); });
    });
    filter.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {  // Enter in the filter toggles the only (or first) visible label
        ev.preventDefault();
        const first = toggles.find((t) => !t.hidden);
        if (first) first.classList.toggle("on");
        filter.value = ""; filter.dispatchEvent(new Event("input")); filter.blur();
      } else if (ev.key === "Escape") { filter.blur(); }
    });
    document.addEventListener("keydown", (ev) => {
      if (ev.target.closest && ev.target.closest("input, select, textarea")) return;
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const key = ev.key.toLowerCase();
      if (ev.key === "Enter") { ev.preventDefault(); save(); return; }
      if (key === "s") { skip(); return; }
      if (key === "u") { undo(); return; }
      if (ev.key === "/") { ev.preventDefault(); filter.focus(); return; }
      const t = toggles.find((b) => b.dataset.key === key);
      if (t) { t.classList.toggle("on"); }
    });
    showProgress(); show(0);
  }

  // -- review queue ---------------------------------------------------------------------------
  function reviewQueue(root) {
    async function decide(row, labels, what) {
      try {
        const r = await api("POST", "/api/annotations", {example_id: parseInt(row.dataset.exampleId, 10), labels,
                                                          origin: row.dataset.origin});
        row.classList.add("decided");
        row.dataset.annotationId = r.annotation_id;
        row.querySelector(".decision").textContent = ` ${what} (#${r.annotation_id})`;
        const undoBtn = document.createElement("button");
        undoBtn.textContent = "Undo"; undoBtn.className = "undo-row";
        undoBtn.addEventListener("click", async () => {
          try {
            await api("POST", `/api/annotations/${r.annotation_id}/undo`);
            row.classList.remove("decided"); row.querySelector(".decision").textContent = " undone";
            undoBtn.remove(); status(`undid #${r.annotation_id}`);
          } catch (e) { status("error: " + e.message); }
        });
        row.querySelector(".decision").appendChild(undoBtn);
        status(`${what}: saved #${r.annotation_id}`);
      } catch (e) { status("error: " + e.message); }
    }
    root.querySelectorAll("tr.review").forEach((row) => {
      row.querySelector(".accept").addEventListener("click", () => decide(row, JSON.parse(row.dataset.suggested), "accepted"));
      row.querySelector(".keep").addEventListener("click", () => decide(row, JSON.parse(row.dataset.given), "kept"));
      row.querySelector(".edit").addEventListener("click", () => { row.querySelector(".editor").hidden = false; });
      row.querySelector(".save-edit").addEventListener("click", () => {
        const labels = Array.from(row.querySelectorAll(".editor input:checked")).map((b) => b.value);
        row.querySelector(".editor").hidden = true;
        decide(row, labels, "edited");
      });
    });
    document.querySelectorAll("#history button.undo").forEach((b) => b.addEventListener("click", async () => {
      const id = b.closest("tr").dataset.annotationId;
      try { await api("POST", `/api/annotations/${id}/undo`); b.replaceWith(document.createTextNode("undone")); status(`undid #${id}`); }
      catch (e) { status("error: " + e.message); }
    }));
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
          if (job.state === "done") { window.location.reload(); return; }
          if (job.state === "failed") { stage.textContent = "failed: " + job.error; button.disabled = false; return; }
          await new Promise((res) => setTimeout(res, 500));
        }
      } catch (e) { stage.textContent = "error: " + e.message; button.disabled = false; }
    });
  }

  const page = document.body.dataset.page;
  if (page === "label" && document.getElementById("labeler")) labelQueue(document.getElementById("labeler"));
  if (page === "review" && document.getElementById("reviewer")) reviewQueue(document.getElementById("reviewer"));
  if (page === "model") modelPage();
})();
