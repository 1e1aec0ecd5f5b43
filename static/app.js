// Small behaviours that htmx attributes cannot express. No inline script anywhere (CSP).
document.addEventListener("click", (event) => {
  // Close the company switcher (and the phone menu) when clicking elsewhere.
  document.querySelectorAll("details.switcher[open], details.navmenu[open]").forEach((d) => {
    if (!d.contains(event.target)) d.removeAttribute("open");
  });
  // Buttons with data-confirm ask first (works for plain forms and htmx alike).
  const btn = event.target.closest("[data-confirm]");
  if (btn && !window.confirm(btn.dataset.confirm)) { event.preventDefault(); event.stopPropagation(); }
}, true);
// Flash messages fade after a while; errors stay until dismissed by the next action.
document.addEventListener("htmx:load", () => {
  document.querySelectorAll(".flash-success").forEach((el) => setTimeout(() => el.classList.add("gone"), 5000));
});
// "Select all" checkboxes for bulk actions.
document.addEventListener("change", (event) => {
  const all = event.target.closest("[data-select-all]");
  if (!all) return;
  document.querySelectorAll(all.dataset.selectAll).forEach((box) => { box.checked = all.checked; });
});
