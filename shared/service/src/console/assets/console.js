// Shows every <time> in the admin's own time zone; the UTC value stays in its title.
document.querySelectorAll("time[datetime]").forEach((el) => {
  const at = new Date(el.getAttribute("datetime"));
  if (!Number.isNaN(at.getTime())) {
    el.textContent = at.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  }
});
