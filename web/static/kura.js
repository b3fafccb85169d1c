// Progressive enhancement only: every page works without this file.
"use strict";

// Copy buttons (hidden until this script shows them).
for (const b of document.querySelectorAll("button[data-copy], button[data-copy-text]")) {
  b.hidden = false;
  b.addEventListener("click", async () => {
    const el = document.getElementById(b.dataset.copy || b.dataset.copyText);
    if (!el) return;
    const text = "value" in el && el.value !== undefined ? el.value : el.textContent;
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = "Copied";
    } catch (_) {
      if (el.select) el.select();
      b.textContent = "Press Ctrl+C";
    }
    setTimeout(() => { b.textContent = "Copy"; }, 1500);
  });
}

// Line ranges: #L10-L20 marks lines 10 to 20; shift-click on a line number extends.
const table = document.querySelector("table#blob, table#blame");
if (table) {
  let anchor = null;
  const mark = () => {
    for (const r of table.querySelectorAll("tr.selected")) r.classList.remove("selected");
    const m = /^#L(\d+)(?:-L(\d+))?$/.exec(location.hash);
    if (!m) return;
    let a = Number(m[1]);
    let b = Number(m[2] || m[1]);
    if (a > b) [a, b] = [b, a];
    anchor = a;
    for (let i = a; i <= b; i++) {
      const row = document.getElementById("L" + i);
      if (row) row.classList.add("selected");
    }
    const first = document.getElementById("L" + a);
    if (first && m[2]) first.scrollIntoView({ block: "center" });
  };
  table.addEventListener("click", (e) => {
    const a = e.target.closest("td.ln a");
    if (!a || !e.shiftKey || anchor === null) return;
    e.preventDefault();
    const n = Number(a.getAttribute("href").slice(2));
    const [lo, hi] = anchor <= n ? [anchor, n] : [n, anchor];
    history.replaceState(null, "", "#L" + lo + "-L" + hi);
    mark();
    anchor = lo;
  });
  window.addEventListener("hashchange", mark);
  mark();
}
