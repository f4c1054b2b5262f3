//! Refusals that retrying cannot fix, and the sentence that tells the operator what to do.
//!
//! Owns the wording only: the connection state machine decides *that* something is fatal
//! (every ERROR event; a 401 after fresh credentials; a 4xx other than 401/404/408/429 on
//! SUBSCRIBE; a refused DC/OS login) and stops; the run loop shows the [`Fatal`] on
//! `/v1/health`. Each remedy names the flag or environment variable to change, because the
//! operator reads it in the DC/OS UI, not in our code.

use super::Fatal;

/// How the client authenticates, for the remedies that name the setting to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthKind {
    /// No credentials configured.
    None,
    /// HTTP Basic with this principal.
    Basic {
        /// The principal.
        principal: String,
    },
    /// A DC/OS service account.
    ServiceAccount {
        /// Its uid.
        uid: String,
        /// The IAM login endpoint.
        login_url: String,
    },
}

/// What the remedies mention about the framework.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameworkFacts {
    /// Service (framework) name.
    pub name: String,
    /// The principal in FrameworkInfo, if any.
    pub principal: Option<String>,
    /// The roles.
    pub roles: Vec<String>,
    /// How we authenticate.
    pub auth: AuthKind,
}

impl FrameworkFacts {
    fn zk_node(&self) -> String {
        format!("/dcos-service-{}", self.name)
    }

    fn roles(&self) -> String {
        self.roles.join(", ")
    }
}

/// An ERROR event on the subscription stream. Mesos sends one and closes the stream when it
/// refuses the framework for good (reference 2.1, 2.11): "Framework has been removed"
/// (TEARDOWN, or failover timeout passed; a removed id can never subscribe again),
/// "Framework failed over" (another SUBSCRIBE with our id took the framework),
/// "Changing framework's principal is not allowed.", and invalid FrameworkInfo texts.
pub fn error_event(message: &str, framework_id: Option<&str>, facts: &FrameworkFacts) -> Fatal {
    let id = framework_id.unwrap_or("(none yet)");
    let remedy = if message.contains("has been removed") {
        format!(
            "Mesos removed framework {id}: it was torn down, or this scheduler was away longer \
             than its failover timeout, and a removed framework id can never subscribe again. \
             Delete the ZooKeeper node {} (or reinstall the service) so that the scheduler \
             registers a new framework id, then restart the scheduler.",
            facts.zk_node()
        )
    } else if message.contains("failed over") {
        format!(
            "Another scheduler instance subscribed as framework {id} and took it over. Only \
             one instance of {} may run: stop the other one (look for a second {} scheduler \
             in Marathon), then restart this one if it should be the active instance.",
            facts.name, facts.name
        )
    } else if message.contains("principal") {
        format!(
            "Framework {id} is registered with another principal than {:?}. Set --principal \
             (FRAMEWORK_PRINCIPAL) back to the principal it was registered with, or \
             reinstall the service to register a new framework, then restart the scheduler.",
            facts.principal.as_deref().unwrap_or("")
        )
    } else {
        format!(
            "Mesos refused to register framework {} (roles {}). Fix the setting the message \
             names (--role/FRAMEWORK_ROLE, --principal/FRAMEWORK_PRINCIPAL, \
             --user/FRAMEWORK_USER, --failover-timeout) and restart the scheduler.",
            facts.name,
            facts.roles()
        )
    };
    Fatal {
        message: format!("Mesos sent ERROR: {message}"),
        remedy,
    }
}

/// A 401 that fresh credentials did not cure. Retrying cannot help: the secret is read at
/// start, so the operator must fix it and restart (the scheduler stops instead of hammering
/// the master, and says so on `/v1/health`).
pub fn unauthorized(master: &str, body: &str, facts: &FrameworkFacts) -> Fatal {
    let remedy = match &facts.auth {
        AuthKind::None => "The Mesos master requires authentication. Give the principal's \
            secret in a file with --mesos-secret-file (FASTDATA_MESOS_SECRET_FILE), or a DC/OS \
            service account with DCOS_SERVICE_ACCOUNT_CREDENTIAL, then restart the scheduler."
            .to_owned(),
        AuthKind::Basic { principal } => format!(
            "Mesos refused principal {principal:?} with the secret from --mesos-secret-file \
             (FASTDATA_MESOS_SECRET_FILE). Check that the principal (--principal, \
             FRAMEWORK_PRINCIPAL) and the secret in that file match the master's \
             --credentials, then restart the scheduler."
        ),
        AuthKind::ServiceAccount { uid, .. } => format!(
            "Mesos refused the token of service account {uid:?}, even right after a fresh \
             login. Check that the account in DCOS_SERVICE_ACCOUNT_CREDENTIAL exists, is the \
             framework's principal, and has the permissions the service needs, then restart \
             the scheduler."
        ),
    };
    Fatal {
        message: format!("Mesos master {master} answered 401: {}", body.trim()),
        remedy,
    }
}

/// Any other 4xx refusal of SUBSCRIBE: the request itself is wrong for this master.
pub fn subscribe_refused(master: &str, status: u16, body: &str, facts: &FrameworkFacts) -> Fatal {
    let remedy = if body.contains("does not match principal") {
        "The credentials authenticate another principal than FrameworkInfo names. Set \
         --principal (FRAMEWORK_PRINCIPAL) to the principal of the secret or service account, \
         then restart the scheduler."
            .to_owned()
    } else if status == 403 {
        format!(
            "Principal {:?} may not register framework {} with role(s) {}. Grant it the \
             permission (DC/OS: dcos:mesos:master:framework:role:<role> create), then restart \
             the scheduler.",
            facts.principal.as_deref().unwrap_or(""),
            facts.name,
            facts.roles()
        )
    } else {
        "Mesos refused the SUBSCRIBE call itself. Fix the setting the message names and \
         restart the scheduler; if the message names no setting, report it as a scheduler \
         bug with this text."
            .to_owned()
    };
    Fatal {
        message: format!(
            "Mesos master {master} refused SUBSCRIBE with {status}: {}",
            body.trim()
        ),
        remedy,
    }
}

/// The DC/OS IAM refused the service account's login token.
pub fn login_refused(status: u16, body: &str, facts: &FrameworkFacts) -> Fatal {
    let (uid, login_url) = match &facts.auth {
        AuthKind::ServiceAccount { uid, login_url } => (uid.as_str(), login_url.as_str()),
        _ => ("", ""),
    };
    Fatal {
        message: format!(
            "the DC/OS IAM at {login_url} refused service account {uid:?} with {status}: {}",
            body.trim()
        ),
        remedy: "Check the uid and the private key in DCOS_SERVICE_ACCOUNT_CREDENTIAL (the \
            account must exist in DC/OS with the matching public key), and \
            FASTDATA_IAM_LOGIN_URL, then restart the scheduler."
            .to_owned(),
    }
}

/// A configuration the client cannot work with (checked at start).
pub fn bad_config(problem: &str) -> Fatal {
    Fatal {
        message: format!("the Mesos client cannot start: {problem}"),
        remedy: "Fix the setting named in the message and restart the scheduler.".into(),
    }
}

/// Mesos assigned another framework id than the one we subscribed with.
pub fn id_changed(ours: &str, assigned: &str, facts: &FrameworkFacts) -> Fatal {
    Fatal {
        message: format!(
            "subscribed as framework {ours}, but Mesos answered with framework {assigned}"
        ),
        remedy: format!(
            "The master does not know framework {ours} any more; its tasks are orphaned. \
             Delete the ZooKeeper node {} (or reinstall the service) so that the scheduler \
             starts over with a new framework id, then restart the scheduler.",
            facts.zk_node()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(auth: AuthKind) -> FrameworkFacts {
        FrameworkFacts {
            name: "fastdata".into(),
            principal: Some("fastdata-principal".into()),
            roles: vec!["fastdata-role".into()],
            auth,
        }
    }

    #[test]
    fn each_error_event_gets_its_own_remedy() {
        let f = facts(AuthKind::None);
        let table = [
            ("Framework has been removed", "/dcos-service-fastdata"),
            (
                "Framework failed over",
                "Only one instance of fastdata may run",
            ),
            (
                "Changing framework's principal is not allowed.",
                "--principal (FRAMEWORK_PRINCIPAL)",
            ),
            (
                "Role '/test/test1' cannot start with a slash",
                "--role/FRAMEWORK_ROLE",
            ),
        ];
        for (message, in_remedy) in table {
            let fatal = error_event(message, Some("fw-0001"), &f);
            assert!(fatal.message.contains(message), "{fatal:?}");
            assert!(
                fatal.remedy.contains(in_remedy),
                "{message}: {}",
                fatal.remedy
            );
        }
        let removed = error_event("Framework has been removed", Some("fw-0001"), &f);
        assert!(removed.remedy.contains("fw-0001"));
    }

    #[test]
    fn unauthorized_names_the_setting_to_fix() {
        let none = unauthorized("http://m:5050", "401 Unauthorized.", &facts(AuthKind::None));
        assert!(
            none.remedy.contains("--mesos-secret-file"),
            "{}",
            none.remedy
        );
        assert!(none.message.contains("401 Unauthorized."));
        let basic = unauthorized(
            "http://m:5050",
            "",
            &facts(AuthKind::Basic {
                principal: "p".into(),
            }),
        );
        assert!(basic.remedy.contains("FASTDATA_MESOS_SECRET_FILE"));
        assert!(basic.remedy.contains("\"p\""));
        let account = unauthorized(
            "http://m:5050",
            "",
            &facts(AuthKind::ServiceAccount {
                uid: "sa".into(),
                login_url: "http://iam/login".into(),
            }),
        );
        assert!(account.remedy.contains("DCOS_SERVICE_ACCOUNT_CREDENTIAL"));
    }

    #[test]
    fn refusals_quote_mesos() {
        let body = "Failed to validate scheduler::Call: Authenticated principal 'fastdata-principal' does not match principal 'other' set in `FrameworkInfo`";
        let f = subscribe_refused("http://m:5050", 400, body, &facts(AuthKind::None));
        assert!(f.message.contains(body));
        assert!(f.remedy.contains("--principal"));
        let forbidden = subscribe_refused("http://m:5050", 403, "", &facts(AuthKind::None));
        assert!(forbidden.remedy.contains("fastdata-role"));
        let login = login_refused(
            401,
            "bad signature",
            &facts(AuthKind::ServiceAccount {
                uid: "sa".into(),
                login_url: "http://iam/login".into(),
            }),
        );
        assert!(login.message.contains("http://iam/login"));
        assert!(login.message.contains("bad signature"));
        assert!(login.remedy.contains("DCOS_SERVICE_ACCOUNT_CREDENTIAL"));
    }
}
