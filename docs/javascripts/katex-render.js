// Render the maths that pymdownx.arithmatex (generic mode) leaves in the page: display maths as
// <div class="arithmatex">\[ ... \]</div>, inline maths as <span class="arithmatex">\( ... \)</span>.
// KaTeX itself is served from this site (assets/katex), so no page needs the network.
(function () {
  function strip(tex) {
    tex = tex.trim();
    var pairs = [["\\[", "\\]"], ["\\(", "\\)"], ["$$", "$$"], ["$", "$"]];
    for (var i = 0; i < pairs.length; i++) {
      var open = pairs[i][0], close = pairs[i][1];
      if (tex.length >= open.length + close.length && tex.startsWith(open) && tex.endsWith(close)) {
        return tex.slice(open.length, tex.length - close.length);
      }
    }
    return tex;
  }
  function render(root) {
    root.querySelectorAll(".arithmatex").forEach(function (el) {
      if (el.querySelector(".katex")) return; // already rendered (instant navigation)
      katex.render(strip(el.textContent), el, {
        displayMode: el.tagName === "DIV",
        throwOnError: false, // a typo shows in red in the page instead of stopping the rest
      });
    });
  }
  if (typeof document$ !== "undefined") {
    document$.subscribe(function () { render(document.body); }); // Material's page-load stream
  } else {
    document.addEventListener("DOMContentLoaded", function () { render(document.body); });
  }
})();
