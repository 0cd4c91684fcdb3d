// Lookout report: expand, filter and locate what the page already shows (no data fetched).
(function () {
  "use strict";
  var tree = document.getElementById("tree");

  function openAncestors(el) {
    for (var p = el.parentElement; p; p = p.parentElement) {
      if (p.tagName === "DETAILS") p.open = true;
    }
  }

  function reveal(id) {
    var el = document.getElementById("n-" + id);
    if (!el) return;
    el.classList.remove("hidden");
    openAncestors(el);
    el.scrollIntoView({ block: "center" });
    el.classList.add("hl");
    setTimeout(function () { el.classList.remove("hl"); }, 2500);
  }

  document.addEventListener("click", function (e) {
    var target = e.target.closest ? e.target.closest("[data-reveal]") : null;
    if (target) {
      e.preventDefault();
      reveal(target.getAttribute("data-reveal"));
    }
  });

  function setAll(open) {
    if (!tree) return;
    var all = tree.querySelectorAll("details");
    for (var i = 0; i < all.length; i++) all[i].open = open;
  }
  var expand = document.getElementById("expand");
  var collapse = document.getElementById("collapse");
  if (expand) expand.addEventListener("click", function () { setAll(true); });
  if (collapse) collapse.addEventListener("click", function () { setAll(false); });

  // Filter: keep nodes whose own title or description matches, and their ancestors.
  var input = document.getElementById("filter");
  var matches = document.getElementById("matches");
  var timer = null;
  function applyFilter() {
    var q = input.value.trim().toLowerCase();
    var nodes = tree.querySelectorAll("li.n");
    var shown = 0;
    for (var i = 0; i < nodes.length; i++) nodes[i].classList.toggle("hidden", q !== "");
    if (q === "") { matches.textContent = ""; return; }
    for (var j = 0; j < nodes.length; j++) {
      var row = nodes[j].querySelector(".t");
      if (row && row.textContent.toLowerCase().indexOf(q) !== -1) {
        shown++;
        for (var p = nodes[j]; p && p !== tree; p = p.parentElement) {
          if (p.classList && p.classList.contains("n")) p.classList.remove("hidden");
          if (p.tagName === "DETAILS" && p !== nodes[j].firstElementChild) p.open = true;
        }
      }
    }
    matches.textContent = shown + " matching";
  }
  if (input && tree) {
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(applyFilter, 120);
    });
  }

  if (location.hash.indexOf("#n-") === 0) reveal(location.hash.slice(3));
  // Marks the first rendered frame (the browser test times the page load up to here).
  requestAnimationFrame(function () {
    requestAnimationFrame(function () { document.documentElement.setAttribute("data-ready", "1"); });
  });
})();
