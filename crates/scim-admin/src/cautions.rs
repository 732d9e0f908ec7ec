//! The notes and restrictions an administrator accepts before enabling
//! User Synchronization. Ids are stable: clients (the console, scripts)
//! send them back to enable.

/// One caution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caution {
    /// Stable id.
    pub id: &'static str,
    /// What the administrator must know.
    pub text: &'static str,
}

/// Every caution, in display order.
pub const CAUTIONS: &[Caution] = &[
    Caution {
        id: "username-matching",
        text: "Users are matched by userName (usually the email address), case-insensitively: \
               Alice@Example.com and alice@example.com are the same user, and the identity \
               provider cannot create a second user whose userName differs only in case.",
    },
    Caution {
        id: "deprovisioned-users-remain",
        text: "When the identity provider deprovisions a user, it usually suspends it \
               (active=false): the user keeps all its data and still counts as an account \
               until it is deleted.",
    },
    Caution {
        id: "local-changes-overwritten",
        text: "Changes made here to a provisioned user's attributes are overwritten by the \
               identity provider on its next synchronization cycle: make changes in the \
               identity provider.",
    },
    Caution {
        id: "refused-while-disabled",
        text: "While user synchronization is disabled, every request of the identity provider \
               is refused (403); after repeated failures the identity provider may put its \
               provisioning job in quarantine, and it must then be restarted there.",
    },
    Caution {
        id: "deletes-follow-policy",
        text: "Deleting a user in the identity provider deletes it here according to the \
               deprovisioning policy in the settings: at once (hard), or suspended and purged \
               after the retention period (soft).",
    },
];

/// The ids of every caution.
pub fn caution_ids() -> Vec<String> {
    CAUTIONS.iter().map(|c| c.id.to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_texts_non_empty() {
        let mut ids = caution_ids();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CAUTIONS.len());
        assert!(CAUTIONS.iter().all(|c| c.text.len() > 40));
    }
}
