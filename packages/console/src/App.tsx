import { common } from './i18n/common';
import { useT } from './i18n/i18n';
import { LangSwitch } from './components/LangSwitch';
import { Loading } from './components/Async';
import { AccountPage } from './pages/AccountPage';
import { AuditPage } from './pages/AuditPage';
import { CustomerPage } from './pages/CustomerPage';
import { DashboardPage } from './pages/DashboardPage';
import { PeoplePage } from './pages/PeoplePage';
import { SignInFlow } from './pages/SignInFlow';
import { Link, match, useRoute } from './router';
import { can, useSession } from './session';

/**
 * The console: the sign-in flow until the session is complete, then the pages. Routes:
 *   /                         dashboard (customers the person may see)
 *   /clients/:orgId           one customer: machines, snapshots, charts, tokens
 *   /organisations/:orgId/personnes   people and access review of an organisation
 *   /journal                  audit trail viewer
 *   /compte                   my account: sessions, second factors, time zone
 */
export function App() {
  const { session, signOut } = useSession();
  const { path } = useRoute();
  const t = useT(common);
  if (session === undefined) return <main><Loading /></main>;
  if (session === null || session.stage !== 'full') return <SignInFlow />;
  const me = session.user;
  const orgId = me.org?.id ?? '';
  let page;
  let params: Record<string, string> | null;
  if ((params = match('/clients/:orgId', path))) page = <CustomerPage orgId={params.orgId!} />;
  else if ((params = match('/organisations/:orgId/personnes', path))) page = <PeoplePage orgId={params.orgId!} />;
  else if (match('/journal', path)) page = <AuditPage />;
  else if (match('/compte', path)) page = <AccountPage />;
  else if (match('/', path)) page = <DashboardPage />;
  else page = <p>{t('notFound')}</p>;
  const current = (p: string) => (path.split('?')[0] === p ? 'page' : undefined);
  return (
    <>
      <a className="skip" href="#main">
        {t('skip')}
      </a>
      <header className="topbar">
        <Link to="/" className="brand">
          coffre
        </Link>
        <nav className="topnav" aria-label="Navigation">
          <span aria-current={current('/')}>
            <Link to="/">{t('navDashboard')}</Link>
          </span>
          {can(me.role, 'users:read') && (
            <span aria-current={current(`/organisations/${orgId}/personnes`)}>
              <Link to={`/organisations/${orgId}/personnes`}>{t('navPeople')}</Link>
            </span>
          )}
          {can(me.role, 'audit:read') && (
            <span aria-current={current('/journal')}>
              <Link to="/journal">{t('navAudit')}</Link>
            </span>
          )}
        </nav>
        <span className="who" aria-current={current('/compte')}>
          <Link to="/compte">{me.name}</Link>
          <span className="hide-narrow">
            {' '}
            · {t(`role.${me.role}`)}
            {me.org ? ` · ${me.org.name}` : ''}
          </span>
        </span>
        <LangSwitch />
        <button type="button" className="secondary" onClick={() => void signOut()}>
          {t('signOut')}
        </button>
      </header>
      <main id="main">{page}</main>
    </>
  );
}
