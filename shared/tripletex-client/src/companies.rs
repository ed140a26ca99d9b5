//! `GET /company/>withLoginAccess`: the client companies an accountant's key may log into (Basic user
//! = a client's company id). Not a port: the operator's CLI discovers with it; no function needs it.

use domain::tripletex::{ClientCompany, TripletexError};
use tracing::instrument;

use crate::transport::HttpTripletexApi;

impl HttpTripletexApi {
    /// Every client company, page by page. Call it with credentials that act for the key's own
    /// company (no `companyId`).
    #[instrument(skip_all)]
    pub async fn clients_with_login_access(&self) -> Result<Vec<ClientCompany>, TripletexError> {
        self.list_all(
            "/company/>withLoginAccess",
            &[(
                "fields",
                "customerCompanyId,name,organizationNumber".to_owned(),
            )],
        )
        .await
    }
}
