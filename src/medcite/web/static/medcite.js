// Progressive enhancement only: every page works without this file.
document.addEventListener("DOMContentLoaded", () => {
  // The audience switch re-renders the page as soon as a reader picks an audience.
  for (const form of document.querySelectorAll("form[data-autosubmit]")) {
    for (const input of form.querySelectorAll("input[type=radio]")) {
      input.addEventListener("change", () => form.submit());
    }
  }
  // Opening one cited passage closes the others, so the text stays readable.
  const cites = document.querySelectorAll("details.cite");
  for (const cite of cites) {
    cite.addEventListener("toggle", () => {
      if (!cite.open) return;
      for (const other of cites) if (other !== cite) other.open = false;
    });
  }
});
