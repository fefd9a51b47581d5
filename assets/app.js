// pushmon dashboard: relative times, copy buttons, tabs, the channel form, filters,
// and live updates over server-sent events (GET /live). Pages work without it.
"use strict";

(function () {
  document.documentElement.classList.add("js");
  document.body.classList.add("js");

  // --- Relative times: "3 min ago", the exact local time on hover. -------------
  function span(ms) {
    const s = Math.floor(Math.abs(ms) / 1000);
    if (s < 60) return s + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min";
    const h = Math.floor(s / 3600);
    if (h < 24) return m % 60 ? h + " h " + (m % 60) + " min" : h + " h";
    const d = Math.floor(s / 86400);
    return h % 24 ? d + " d " + (h % 24) + " h" : d + " d";
  }
  function relative(ms) {
    if (Math.abs(ms) < 1000) return "just now";
    return ms > 0 ? span(ms) + " ago" : "in " + span(ms);
  }
  function refreshTimes(root) {
    const now = Date.now();
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      const at = Date.parse(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      if (!el.closest(".status-page")) el.textContent = relative(now - at);
      if (!el.dataset.local) {
        el.title = new Date(at).toLocaleString() + " (" + el.title + ")";
        el.dataset.local = "1";
      }
    });
  }
  refreshTimes();
  setInterval(refreshTimes, 10000);

  // --- Copy buttons. ------------------------------------------------------------
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    const text = source.textContent;
    const done = function () {
      button.textContent = "Copied";
      button.classList.add("done");
      setTimeout(function () { button.textContent = "Copy"; button.classList.remove("done"); }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectText(source); });
    } else {
      selectText(source);
      try { if (document.execCommand("copy")) done(); } catch (e) { /* selected for the user */ }
    }
  });
  function selectText(el) {
    const range = document.createRange();
    range.selectNodeContents(el);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  // --- Tabs. --------------------------------------------------------------------
  document.querySelectorAll("[data-tabs]").forEach(function (tabs) {
    const buttons = tabs.querySelectorAll("[data-tab]");
    const show = function (name) {
      buttons.forEach(function (b) { b.setAttribute("aria-selected", String(b.dataset.tab === name)); });
      tabs.querySelectorAll("[data-pane]").forEach(function (p) { p.hidden = p.dataset.pane !== name; });
    };
    buttons.forEach(function (b) { b.addEventListener("click", function () { show(b.dataset.tab); }); });
    if (buttons.length) show(buttons[0].dataset.tab);
  });

  // --- The channel form shows the fields of its kind. -----------------------------
  document.querySelectorAll("[data-kind-form]").forEach(function (form) {
    const select = form.querySelector("[data-kind]");
    const sync = function () {
      form.querySelectorAll("[data-for]").forEach(function (el) {
        el.hidden = el.dataset.for.split(" ").indexOf(select.value) < 0;
      });
    };
    select.addEventListener("change", sync);
    sync();
  });

  // --- Filters apply as they change. ------------------------------------------------
  const filters = document.getElementById("filters");
  if (filters) {
    filters.querySelectorAll("select").forEach(function (s) {
      s.addEventListener("change", function () { filters.submit(); });
    });
    const search = filters.querySelector("input[type=search]");
    let typing = null;
    search.addEventListener("input", function () {
      clearTimeout(typing);
      typing = setTimeout(function () { filters.submit(); }, 450);
    });
    if (search.value) {
      search.focus();
      search.setSelectionRange(search.value.length, search.value.length);
    }
  }

  // --- Counts in the header, the tab's title and the favicon. -----------------------
  const baseTitle = document.body.dataset.title || "pushmon";
  function showCounts(counts) {
    if (!counts) return;
    ["down", "pending", "up", "paused"].forEach(function (name) {
      const el = document.querySelector('[data-count="' + name + '"]');
      if (el) {
        el.textContent = counts[name];
        const link = el.closest(".count");
        if (link && name !== "up") link.classList.toggle("zero", counts[name] === 0);
      }
    });
    document.title = (counts.down > 0 ? "(" + counts.down + " down) " : "") + baseTitle + " · pushmon";
    favicon(counts.down);
  }
  function favicon(down) {
    const link = document.getElementById("favicon");
    if (!link) return;
    const color = down > 0 ? "#dc2f2f" : "#17a34a";
    const label = down > 0 ? (down > 99 ? "99+" : String(down)) : "";
    const size = label.length > 2 ? 13 : 18;
    const svg =
      '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">' +
      '<circle cx="16" cy="16" r="15" fill="' + color + '"/>' +
      (label
        ? '<text x="16" y="22" font-family="Arial,sans-serif" font-weight="700" font-size="' + size +
          '" text-anchor="middle" fill="#fff">' + label + "</text>"
        : '<circle cx="16" cy="16" r="6" fill="#fff"/>') +
      "</svg>";
    link.href = "data:image/svg+xml," + encodeURIComponent(svg);
  }
  function countsOf(el) {
    if (!el || !el.dataset || el.dataset.down === undefined) return null;
    return {
      down: +el.dataset.down, pending: +el.dataset.pending,
      up: +el.dataset.up, paused: +el.dataset.paused,
    };
  }
  favicon(+(document.body.dataset.down || 0));

  // --- Live updates. ------------------------------------------------------------
  const region = document.getElementById("live-region");
  let refetching = null;
  let again = false;
  function refetch() {
    if (!region) return;
    if (refetching) { again = true; return; }
    refetching = fetch(region.dataset.partial, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html === null) return;
        region.innerHTML = html;
        refreshTimes(region);
        showCounts(countsOf(region.firstElementChild));
      })
      .catch(function () { /* the next change or tick tries again */ })
      .finally(function () {
        refetching = null;
        if (again) { again = false; refetch(); }
      });
  }
  let soon = null;
  function refetchSoon() {
    clearTimeout(soon);
    soon = setTimeout(refetch, 150);
  }
  // Heartbeats do not send events (they cost the server nothing); refresh the shown
  // part now and then for their times.
  setInterval(function () { if (!document.hidden) refetch(); }, 30000);

  if (document.body.dataset.live && window.EventSource) {
    const dot = document.getElementById("live-dot");
    const mark = function (state, title) {
      if (!dot) return;
      dot.className = "live-dot " + state;
      dot.title = title;
    };
    const source = new EventSource("/live");
    source.addEventListener("open", function () { mark("on", "live updates: on"); });
    source.addEventListener("error", function () { mark("off", "live updates: reconnecting"); });
    source.addEventListener("hello", function (event) {
      showCounts(JSON.parse(event.data).counts);
    });
    source.addEventListener("reload", function (event) {
      showCounts(JSON.parse(event.data).counts);
      refetchSoon();
    });
    source.addEventListener("change", function (event) {
      const data = JSON.parse(event.data);
      showCounts(data.counts);
      if (!region) return;
      const only = region.dataset.monitor;
      if (!only || data.changes.some(function (c) { return c.id === only; })) refetchSoon();
    });
  }
})();
