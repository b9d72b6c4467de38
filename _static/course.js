/* The course website's small script (Jupyter Book adds every JS file in _static/).

1. Tap to open a figure at full size: each notebook figure links to its full-size image
   (the wide layout), which a phone can zoom and pan.
2. Wide formulas and tables: every display formula, inline formula or table wider than
   the text column gets the class ``wide-scroll`` (it scrolls sideways, with shadows at
   the edge that has more to see; _static/course.css) and a hint line above it. Checked
   again after MathJax typesets and when the window is resized.
*/
(function () {
  "use strict";

  function linkFigures() {
    document.querySelectorAll("figure.notebook-figure").forEach(function (figure) {
      var wide = figure.querySelector("img.fig-wide") || figure.querySelector("img");
      if (!wide) return;
      figure.querySelectorAll("img").forEach(function (img) {
        if (img.closest("a")) return;
        var link = document.createElement("a");
        link.href = wide.getAttribute("src");
        link.className = "figure-zoom";
        link.title = "Open the figure at full size";
        link.setAttribute("aria-label", "Open the figure at full size: " + (img.alt || ""));
        img.parentNode.insertBefore(link, img);
        link.appendChild(img);
        if (img.classList.contains("fig-narrow")) link.classList.add("fig-narrow-link");
      });
    });
  }

  var HINT = "scroll sideways to see all of it";

  function scroller(el) {
    // the element that scrolls: a display formula's MathJax container, a table's
    // container (added if missing), else the element itself
    if (el.tagName === "DIV") {
      var typeset = el.querySelector("mjx-container");
      if (typeset) return typeset;
    }
    if (el.tagName === "TABLE") {
      var parent = el.parentElement;
      if (parent.classList.contains("pst-scrollable-table-container") ||
          parent.classList.contains("table-scroll")) return parent;
      var box = document.createElement("div");
      box.className = "table-scroll";
      parent.insertBefore(box, el);
      box.appendChild(el);
      return box;
    }
    return el;
  }

  function markWide() {
    var article = document.querySelector("article") || document.body;
    var items = article.querySelectorAll(
      "div.math, span.math, table, mjx-container:not([display='true'])");
    items.forEach(function (item) {
      if (item.tagName === "MJX-CONTAINER" && item.closest("span.math, div.math")) return;
      if (item.closest(".wide-scroll") && !item.classList.contains("wide-scroll") &&
          item.tagName !== "TABLE") return;
      var el = scroller(item);
      el.classList.remove("wide-scroll");
      var limit = el.parentElement.getBoundingClientRect().right;
      var box = el.getBoundingClientRect();
      if (box.width === 0) return;  // not shown at this width
      var wide = (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) ||
                 box.right > limit + 1;
      var hint = el.previousElementSibling;
      var hasHint = hint && hint.classList.contains("scroll-hint");
      if (wide) {
        el.classList.add("wide-scroll");
        el.setAttribute("tabindex", "0");  // scrollable from the keyboard too
        if (!hasHint) {
          hint = document.createElement(el.tagName === "SPAN" ? "span" : "div");
          hint.className = "scroll-hint";
          hint.textContent = HINT;
          el.parentNode.insertBefore(hint, el);
        }
      } else if (hasHint) {
        hint.remove();
      }
    });
  }

  function whenTypeset(fn) {
    var tries = 0;
    (function wait() {
      var mj = window.MathJax;
      if (mj && mj.startup && mj.startup.promise) {
        mj.startup.promise.then(fn);
      } else if (tries++ < 50) {
        setTimeout(wait, 100);
      }
    })();
  }

  function start() {
    linkFigures();
    markWide();
    whenTypeset(markWide);
    var timer;
    window.addEventListener("resize", function () {
      clearTimeout(timer);
      timer = setTimeout(markWide, 150);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
