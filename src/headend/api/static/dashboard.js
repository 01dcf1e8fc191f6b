// headend dashboard: sortable tables, the edit form's value field, and "Read now" on a meter's
// page (POST the read to the JSON API with the session cookie, then follow the job).
"use strict";

(function () {
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  const ENDED = new Set(["succeeded", "failed", "cancelled"]);

  // -- sortable tables: each column header becomes a button -----------------------------
  function cellValue(row, index, numeric) {
    const cell = row.cells[index];
    if (!cell) return numeric ? -Infinity : "";
    const raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
    if (!numeric) return raw.trim().toLowerCase();
    const number = parseFloat(raw.replace(/[^0-9.\-]/g, ""));
    return Number.isNaN(number) ? -Infinity : number;
  }

  function sortTable(table, th, index) {
    const numeric = th.getAttribute("data-type") === "number";
    const ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("thead th").forEach((other) => other.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = cellValue(a, index, numeric);
      const y = cellValue(b, index, numeric);
      const order = x < y ? -1 : x > y ? 1 : 0;
      return ascending ? order : -order;
    });
    rows.forEach((row) => body.appendChild(row));
  }

  document.querySelectorAll("table.sortable").forEach((table) => {
    table.querySelectorAll("thead th").forEach((th, index) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.textContent = th.textContent;
      th.textContent = "";
      th.appendChild(button);
      button.addEventListener("click", () => sortTable(table, th, index));
    });
  });

  // -- a table or chart wider than the screen scrolls in its box: reachable by keyboard -------
  function scrollables() {
    document.querySelectorAll(".table-wrap, .chart-scroll").forEach((box) => {
      if (box.scrollWidth > box.clientWidth) {
        if (!box.hasAttribute("tabindex")) {
          const caption = box.querySelector("caption, svg title");
          const section = box.closest("section");
          const heading = section ? section.querySelector("h1, h2") : null;
          const name = caption ? caption.textContent : heading ? heading.textContent : "Table";
          box.setAttribute("tabindex", "0");
          box.setAttribute("role", "region");
          box.setAttribute("aria-label", name + " (scrolls sideways)");
        }
      } else if (box.getAttribute("role") === "region") {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
        box.removeAttribute("aria-label");
      }
    });
  }
  scrollables();
  window.addEventListener("resize", scrollables);
  document.addEventListener("toggle", scrollables, true);

  // -- the edit form: the value field matters only when a value is to be set -----------------
  document.querySelectorAll("form.edit-form").forEach((form) => {
    const value = form.querySelector('input[name="value"]');
    const sync = () => {
      const chosen = form.querySelector('input[name="mode"]:checked');
      value.disabled = !chosen || chosen.value !== "value";
    };
    form.querySelectorAll('input[name="mode"]').forEach((r) => r.addEventListener("change", sync));
    sync();
  });

  // -- read now --------------------------------------------------------------------------------
  const readForm = document.getElementById("read-now");
  if (!readForm) return;
  const statusLine = document.getElementById("read-status");
  const result = document.getElementById("read-result");
  const button = document.getElementById("read-button");

  function say(text, state) {
    statusLine.textContent = text;
    statusLine.setAttribute("data-state", state);
  }

  async function api(url, options) {
    const response = await fetch(url, Object.assign({ credentials: "same-origin" }, options));
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok) {
      const detail = body && body.detail ? body.detail : response.status + " " + response.statusText;
      throw new Error(detail);
    }
    return body;
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function showValues(job) {
    result.replaceChildren();
    (job.values || []).forEach((value) => {
      const registers = value.registers || {};
      const codes = Object.keys(registers);
      if (value.clock) {
        const clock = value.clock;
        const deviation = clock.deviation_min === null || clock.deviation_min === undefined
          ? "" : " (deviation " + clock.deviation_min + " min)";
        result.appendChild(element("p", "Meter clock: " + clock.meter_time + deviation));
      }
      if (codes.length) {
        const wrap = element("div", undefined, "table-wrap");
        const table = element("table");
        const caption = element("caption", "Registers read by job " + job.job_id, "visually-hidden");
        table.appendChild(caption);
        const head = table.createTHead().insertRow();
        ["OBIS", "Value", "Unit"].forEach((label) => {
          const th = element("th", label);
          th.scope = "col";
          head.appendChild(th);
        });
        const body = table.createTBody();
        codes.sort().forEach((code) => {
          const row = body.insertRow();
          row.insertCell().textContent = code;
          const cell = row.insertCell();
          cell.textContent = registers[code].value;
          cell.className = "num";
          row.insertCell().textContent = registers[code].unit || "";
        });
        wrap.appendChild(table);
        result.appendChild(wrap);
      }
      if (value.load_profile && value.load_profile.rows) {
        result.appendChild(element("p", value.load_profile.rows.length + " load profile rows read"));
      }
    });
  }

  async function follow(job) {
    const deadline = Date.now() + 180000;
    while (!ENDED.has(job.state) && Date.now() < deadline) {
      const waiting = job.state === "retry_wait" ? "waiting to try again" : job.state;
      say("Job " + job.job_id + ": " + waiting + " (attempts: " + job.attempts + ")…", job.state);
      job = await api("/api/v1/jobs/" + job.job_id + "?wait=10", {
        headers: { Accept: "application/json" },
      });
    }
    if (job.state === "succeeded") {
      say("Job " + job.job_id + " succeeded after " + job.attempts + " attempt(s).", job.state);
      showValues(job);
    } else if (ENDED.has(job.state)) {
      const why = job.failure_category ? job.failure_category.replace(/_/g, " ") : job.state;
      say("Job " + job.job_id + " " + job.state + ": " + why +
        (job.failure_detail ? " (" + job.failure_detail + ")" : ""), job.state);
    } else {
      say("Job " + job.job_id + " has not ended yet; its state shows in the job list below " +
        "after a reload.", job.state);
    }
  }

  readForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const meter = readForm.getAttribute("data-meter");
    const kind = readForm.querySelector('select[name="kind"]').value;
    button.disabled = true;
    result.replaceChildren();
    say("Asking for a " + kind.replace(/_/g, " ") + " read…", "sending");
    try {
      const job = await api("/api/v1/meters/" + encodeURIComponent(meter) + "/reads", {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRF-Token": csrf,
        },
        body: JSON.stringify({ kind: kind }),
      });
      await follow(job);
    } catch (error) {
      say("The read could not be done: " + error.message, "error");
    } finally {
      button.disabled = false;
    }
  });
})();
