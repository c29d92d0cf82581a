// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  document.addEventListener("DOMContentLoaded", function () {
    // Search filters: folded behind the "Filters" button on narrow screens (CSS), opened by it.
    document.querySelectorAll(".filters-toggle[aria-controls]").forEach(function (button) {
      var panel = document.getElementById(button.getAttribute("aria-controls"));
      if (!panel) {
        return;
      }
      button.addEventListener("click", function () {
        var open = panel.classList.toggle("open");
        button.setAttribute("aria-expanded", open ? "true" : "false");
      });
    });
    // Copy buttons (the referral link): copy the named field's value and say so.
    if (navigator.clipboard && window.isSecureContext) {
      document.querySelectorAll("button[data-copy]").forEach(function (button) {
        var field = document.getElementById(button.getAttribute("data-copy"));
        var status = document.getElementById(button.getAttribute("data-status"));
        if (!field) {
          return;
        }
        button.hidden = false;
        button.addEventListener("click", function () {
          navigator.clipboard.writeText(field.value).then(function () {
            if (status) {
              status.textContent = "Copied. Paste it into an email or a message to a colleague.";
            }
          }, function () {
            field.select();
            if (status) {
              status.textContent = "Your browser did not let us copy: the link is selected, copy it with Ctrl+C or Cmd+C.";
            }
          });
        });
      });
    }
    var toggle = document.querySelector(".nav-toggle");
    var nav = document.getElementById("site-nav");
    if (toggle && nav) {
      toggle.addEventListener("click", function () {
        var open = nav.classList.toggle("open");
        toggle.setAttribute("aria-expanded", open ? "true" : "false");
      });
    }
    // Ask before anything destructive: forms carrying data-confirm="question".
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) {
          event.preventDefault();
        }
      });
    });
    // Comma-separated inputs with suggestions (use cases, topics): browsers match a <datalist>
    // against the whole value, so after the first comma nothing would be suggested. Each such input
    // gets a datalist of its own whose options are "<what is typed up to the last comma> <suggestion>",
    // rebuilt as that part changes. Without this script the page's datalist serves the first item.
    document.querySelectorAll("datalist[data-comma-list][id]").forEach(function (source) {
      var names = Array.prototype.map.call(source.options, function (option) { return option.value; });
      document.querySelectorAll("input[list]").forEach(function (input) {
        if (input.getAttribute("list") !== source.id || !names.length) {
          return;
        }
        var live = document.createElement("datalist");
        live.id = source.id + "-for-" + (input.id || input.name);
        source.parentNode.insertBefore(live, source.nextSibling);
        input.setAttribute("list", live.id);
        var shownFor = null;
        function refresh() {
          var value = input.value;
          var cut = value.lastIndexOf(",") + 1; // 0 when there is no comma yet
          var rest = value.slice(cut);
          var head = value.slice(0, cut);
          if (cut > 0) {
            // Keep what was typed after the comma so the option still starts with the whole value.
            var space = /^\s*/.exec(rest)[0];
            head += space || (rest ? "" : " ");
          }
          if (head === shownFor) {
            return;
          }
          shownFor = head;
          var taken = {};
          head.split(",").forEach(function (item) {
            taken[item.trim().toLowerCase()] = true;
          });
          var options = document.createDocumentFragment();
          names.forEach(function (name) {
            if (!taken[name.trim().toLowerCase()]) {
              var option = document.createElement("option");
              option.value = head + name;
              options.appendChild(option);
            }
          });
          live.textContent = "";
          live.appendChild(options);
        }
        input.addEventListener("input", refresh);
        input.addEventListener("focus", refresh);
        refresh();
      });
    });
  });
})();
