/** Placeholder: written next. */
export function SignInFlow() {
  return <p>SignInFlow</p>;
}
