// Progressive enhancement only: every page works without this file.
document.addEventListener("DOMContentLoaded", () => {
  // The audience switch re-renders the page as soon as a reader picks an audience.
  for (const form of document.querySelectorAll("form[data-autosubmit]")) {
    for (const input of form.querySelectorAll("input[type=radio]")) {
      input.addEventListener("change", () => form.submit());
    }
  }
  // On the Ask page, "Preview the answer live" streams the answer (server-sent events from
  // POST /api/answers/stream) without creating an article; the Ask button still posts the form.
  const preview = document.querySelector("button.preview[data-stream]");
  if (preview && window.fetch && window.TextDecoder) {
    const form = preview.form;
    const progress = form.querySelector("output.progress");
    preview.hidden = false;
    preview.addEventListener("click", async () => {
      const data = new FormData(form);
      const question = String(data.get("question") || "").trim();
      if (!question) return form.reportValidity();
      const show = (text) => { progress.hidden = false; progress.textContent = text; };
      preview.disabled = true;
      show("Starting…");
      try {
        const response = await fetch(preview.dataset.stream, {
          method: "POST",
          headers: { "content-type": "application/json", "x-csrf-token": String(data.get("csrf_token") || "") },
          body: JSON.stringify({
            question, audience: data.get("audience") || "clinician", composer: data.get("composer") || "extractive",
          }),
        });
        if (!response.ok) {
          const failure = await response.json().catch(() => ({ error: response.statusText }));
          return show(failure.error);
        }
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffered = "", status = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffered += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffered.indexOf("\n\n")) >= 0) {
            const frame = buffered.slice(0, end);
            buffered = buffered.slice(end + 2);
            const kind = (frame.match(/^event: (.*)$/m) || [])[1];
            const event = JSON.parse((frame.match(/^data: (.*)$/m) || [, "{}"])[1]);
            if (kind === "status") show((status = event.text) + "…");
            else if (kind === "delta") show(`${status}… ${event.n_chars} characters written`);
            else if (kind === "error") show(event.error);
            else if (kind === "answer") {
              const answer = event.answer;
              show([answer.notice, "Bottom line: " + answer.bottom_line.text,
                "Press Ask to publish it as an article for review."].filter(Boolean).join("\n"));
            }
          }
        }
      } catch (error) {
        show("The live preview failed; press Ask instead.");
      } finally {
        preview.disabled = false;
      }
    });
  }
  // Asking with "Also search PubMed" takes seconds (esearch, efetch, ingest, then the answer): say so meanwhile.
  const ask = document.querySelector("form.ask");
  if (ask) {
    ask.addEventListener("submit", () => {
      const pubmed = ask.querySelector("input[name=pubmed]");
      const progress = ask.querySelector("output.progress");
      if (!pubmed || !pubmed.checked || !progress) return;
      progress.hidden = false;
      progress.textContent = progress.dataset.pubmed || "Searching PubMed…";
      for (const button of ask.querySelectorAll("button")) button.disabled = true;
    });
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
