/** Placeholder: written next. */
export function CustomerPage({ orgId }: { orgId: string }) {
  return <p>CustomerPage {orgId}</p>;
}
