/** Placeholder: written next. */
export function PeoplePage({ orgId }: { orgId: string }) {
  return <p>PeoplePage {orgId}</p>;
}
