/* CRMForge: the few things htmx does not do by itself. Every page works without this file. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function csrfToken() {
    var raw = document.body && document.body.getAttribute("hx-headers");
    try { return raw ? JSON.parse(raw)["X-CSRFToken"] : ""; } catch (e) { return ""; }
  }

  /* Live form conditions: the server answers <template id="form-state" data-state="{...}">
     with visible / required / readonly for each conditional field. */
  function applyFormState(node) {
    var raw = node && node.getAttribute("data-state");
    if (!raw) return;
    var state = JSON.parse(raw);
    Object.keys(state).forEach(function (name) {
      var box = document.getElementById("field-" + name);
      if (!box) return;
      var s = state[name];
      box.hidden = !s.visible;
      var star = box.querySelector("[data-req]");
      if (star) star.hidden = !s.required;
      box.querySelectorAll("input:not([type=hidden]), select, textarea").forEach(function (el) {
        if (el.closest(".picker-results")) return;
        el.required = !!s.required && s.visible;
        if (el.tagName === "SELECT" || el.type === "checkbox") el.disabled = !!s.readonly;
        else el.readOnly = !!s.readonly;
      });
    });
  }

  /* Link picker: choosing an option fills the hidden id and the visible title. */
  function pick(option) {
    var picker = option.closest("[data-picker]");
    if (!picker) return;
    var id = option.getAttribute("data-id"), title = option.getAttribute("data-title");
    picker.querySelector("[data-picker-id]").value = id;
    picker.querySelector("[data-picker-shown]").value = title;
    var text = picker.querySelector("[data-picker-text]");
    text.value = title;
    text.setAttribute("aria-expanded", "false");
    picker.querySelector(".picker-results").innerHTML = "";
    text.dispatchEvent(new Event("change", { bubbles: true }));
  }

  document.addEventListener("click", function (event) {
    var dismiss = event.target.closest("[data-dismiss]");
    if (dismiss) { dismiss.closest("[data-dismissable]").remove(); return; }
    var option = event.target.closest(".picker-option[data-id]");
    if (option) { event.preventDefault(); pick(option); return; }
    document.querySelectorAll(".picker-results").forEach(function (box) {
      if (!box.parentNode.contains(event.target)) box.innerHTML = "";
    });
    var all = event.target.closest("[data-check-all]");
    if (all) {
      all.closest("table").querySelectorAll("input[name=ids]").forEach(function (box) {
        box.checked = all.checked;
      });
    }
    if (event.target.closest("input[name=ids], [data-check-all]")) updateBulkBar();
  });

  /* The bulk bar shows once something is selected (without scripts it is always there). */
  function updateBulkBar() {
    var form = document.getElementById("bulk-form");
    if (!form) return;
    var n = form.querySelectorAll("input[name=ids]:checked").length;
    var bar = form.querySelector("[data-bulk-bar]");
    if (!bar) return;
    bar.classList.toggle("idle", n === 0);
    var label = bar.querySelector("[data-bulk-count]");
    if (label) label.textContent = n + " selected:";
  }

  document.addEventListener("input", function (event) {
    var text = event.target.closest("[data-picker-text]");
    if (!text) return;
    var picker = text.closest("[data-picker]");
    // Typing replaces the choice: the id goes until an option is picked again.
    if (text.value.trim() === "") {
      picker.querySelector("[data-picker-id]").value = "";
      picker.querySelector("[data-picker-shown]").value = "";
    }
  });

  document.addEventListener("keydown", function (event) {
    var text = event.target.closest("[data-picker-text]");
    if (!text) return;
    var results = text.closest("[data-picker]").querySelector(".picker-results");
    var options = results.querySelectorAll(".picker-option[data-id]");
    if (event.key === "ArrowDown" && options.length) { event.preventDefault(); options[0].focus(); }
    if (event.key === "Enter" && options.length === 1) { event.preventDefault(); pick(options[0]); }
    if (event.key === "Escape") results.innerHTML = "";
  });

  document.addEventListener("keydown", function (event) {
    var option = event.target.closest(".picker-option[data-id]");
    if (!option) return;
    if (event.key === "ArrowDown" && option.nextElementSibling) { event.preventDefault(); option.nextElementSibling.focus(); }
    if (event.key === "ArrowUp") {
      event.preventDefault();
      (option.previousElementSibling || option.closest("[data-picker]").querySelector("[data-picker-text]")).focus();
    }
  });

  /* The phone menu button is a <label> for the menu checkbox: Enter and Space press it too. */
  document.addEventListener("keydown", function (event) {
    var toggle = event.target.closest && event.target.closest("label[for][role=button]");
    if (!toggle || (event.key !== "Enter" && event.key !== " ")) return;
    event.preventDefault();
    toggle.click();
  });

  /* Kanban: drag a card to another column = the same move form, posted by htmx. */
  var dragged = null;
  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest(".kanban-card[draggable=true]");
    if (!card) return;
    dragged = card;
    card.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.getAttribute("data-id"));
  });
  document.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("dragging");
    document.querySelectorAll(".drop-target").forEach(function (c) { c.classList.remove("drop-target"); });
    dragged = null;
  });
  document.addEventListener("dragover", function (event) {
    var column = dragged && event.target.closest && event.target.closest(".kanban-col");
    if (!column) return;
    event.preventDefault();
    document.querySelectorAll(".drop-target").forEach(function (c) { if (c !== column) c.classList.remove("drop-target"); });
    column.classList.add("drop-target");
  });
  document.addEventListener("drop", function (event) {
    var column = dragged && event.target.closest && event.target.closest(".kanban-col");
    if (!column) return;
    event.preventDefault();
    var card = dragged;
    column.classList.remove("drop-target");
    if (card.closest(".kanban-col") === column) return;
    column.appendChild(card);  // show the move at once; the server's board replaces it
    window.htmx.ajax("POST", card.getAttribute("data-move-url") + window.location.search, {
      target: "#board", swap: "outerHTML", source: card,
      values: { value: column.getAttribute("data-value"), version: card.getAttribute("data-version") },
      headers: { "X-CSRFToken": csrfToken(), "HX-Target": "board" }
    });
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var state = document.getElementById("form-state");
    if (state) applyFormState(state);
    var expanded = event.target.closest && event.target.closest(".picker-results");
    if (expanded) {
      var text = expanded.closest("[data-picker]").querySelector("[data-picker-text]");
      text.setAttribute("aria-expanded", expanded.children.length ? "true" : "false");
    }
  });
})();
