/** Placeholder: written next. */
export function AuditPage() {
  return <p>AuditPage</p>;
}
