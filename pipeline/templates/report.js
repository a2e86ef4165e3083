"use strict";
(() => {
  const all = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const form = document.getElementById("filters");
  const search = document.getElementById("q");
  const shown = document.getElementById("shown");
  const empty = document.getElementById("empty");
  const sections = all("section.row");
  const total = all('article.card[data-role="entry"]').length;
  const density = document.getElementById("density");
  const DENSITY_KEY = "ideopipe.report.compact";

  function apply() {
    const steps = new Set(all('input[name="step"]:checked', form).map((box) => box.value));
    const statuses = new Set(all('input[name="status"]:checked', form).map((box) => box.value));
    const terms = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    let cards = 0;
    let rows = 0;
    for (const section of sections) {
      const rowText = section.dataset.search;
      const nodes = all(".node", section);
      // Children come after their parents in document order, so walk backwards:
      // a card that fails the filter stays (dimmed) when a descendant passes.
      for (let i = nodes.length - 1; i >= 0; i -= 1) {
        const node = nodes[i];
        const card = node.querySelector(":scope > .card");
        const text = card.dataset.search;
        // A source photo is never a hit itself: it shows while any of its chain shows.
        const source = card.dataset.role === "source";
        const hit = !source && steps.has(card.dataset.step) && statuses.has(card.dataset.status) &&
          terms.every((t) => rowText.includes(t) || text.includes(t));
        const kids = node.querySelector(":scope > .kids");
        let kidShown = false;
        if (kids) {
          const visible = Array.from(kids.children).filter((kid) => !kid.hidden);
          kidShown = visible.length > 0;
          kids.hidden = !kidShown;
          for (const kid of kids.children) {
            kid.classList.toggle("vis-first", kid === visible[0]);
            kid.classList.toggle("vis-last", kid === visible[visible.length - 1]);
          }
        }
        node.hidden = !hit && !kidShown;
        card.classList.toggle("context", !hit && kidShown && !source);
        if (hit) cards += 1;
      }
      section.hidden = nodes.every((node) => node.hidden);
      if (!section.hidden) rows += 1;
    }
    shown.textContent = `${cards} of ${total} entries · ${rows} of ${sections.length} rows`;
    empty.hidden = total === 0 || cards > 0;
  }

  function setCompact(on, remember) {
    document.body.classList.toggle("compact", on);
    density.setAttribute("aria-pressed", on ? "true" : "false");
    if (remember) {
      try { window.localStorage.setItem(DENSITY_KEY, on ? "1" : "0"); } catch (e) { /* file: pages may have no storage */ }
    }
  }
  density.addEventListener("click", () => setCompact(!document.body.classList.contains("compact"), true));
  try {
    const saved = window.localStorage.getItem(DENSITY_KEY);
    if (saved !== null) setCompact(saved === "1", false);
  } catch (e) { /* no storage: keep the page's default */ }

  form.addEventListener("input", apply);
  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("reset", () => setTimeout(apply, 0));
  document.addEventListener("keydown", (event) => {
    if (event.key === "/" && document.activeElement !== search) {
      event.preventDefault();
      search.focus();
    } else if (event.key === "c" && !event.ctrlKey && !event.metaKey && !event.altKey &&
               !(document.activeElement instanceof HTMLInputElement)) {
      density.click();
    } else if (event.key === "Escape" && document.activeElement === search) {
      search.value = "";
      apply();
    }
  });
  apply();
})();
