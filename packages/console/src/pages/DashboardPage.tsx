/** Placeholder: written next. */
export function DashboardPage() {
  return <p>DashboardPage</p>;
}
