use actix_web::{HttpResponse, get};

use super::auth::MaybeSignedIn;
use super::page::see_other;

/// Sends each person to where their work is.
#[get("/")]
pub async fn home(identity: MaybeSignedIn) -> HttpResponse {
    match identity.0 {
        None => see_other("/login"),
        Some(identity) if identity.user.is_staff => see_other("/staff"),
        Some(identity) => match identity.partner {
            Some(partner) => see_other(&format!("/partner/{}", partner.code)),
            None => see_other("/my"),
        },
    }
}
