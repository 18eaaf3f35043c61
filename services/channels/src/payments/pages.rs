//! The short pages a payment link can show instead of a checkout, Spanish first, then
//! Portuguese and English. They carry amounts and invoice numbers only.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

fn page(status: StatusCode, lines: [&str; 3], extra: &str) -> Response {
    let [es, pt, en] = lines;
    let body = format!(
        "<!doctype html><html lang=\"es\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Recobro</title></head>\
         <body><main><p>{es}</p><p lang=\"pt\">{pt}</p><p lang=\"en\">{en}</p>{extra}</main></body></html>"
    );
    (
        status,
        [
            ("cache-control", "no-store"),
            ("referrer-policy", "no-referrer"),
            (
                "content-security-policy",
                "default-src 'none'; form-action 'self'",
            ),
        ],
        Html(body),
    )
        .into_response()
}

pub fn paid() -> Response {
    page(
        StatusCode::OK,
        [
            "Esta factura ya está pagada. Gracias.",
            "Esta fatura já está paga. Obrigado.",
            "This invoice is already paid. Thank you.",
        ],
        "",
    )
}

pub fn cancelled() -> Response {
    page(
        StatusCode::OK,
        [
            "Esta factura fue anulada: no hay nada que pagar.",
            "Esta fatura foi cancelada: não há nada a pagar.",
            "This invoice was cancelled: there is nothing to pay.",
        ],
        "",
    )
}

pub fn disputed() -> Response {
    page(
        StatusCode::OK,
        [
            "Esta factura está en revisión por su reclamo. Le escribiremos cuando se resuelva.",
            "Esta fatura está em análise pela sua contestação. Entraremos em contato quando for resolvida.",
            "This invoice is under review after your dispute. We will write to you once it is resolved.",
        ],
        "",
    )
}

pub fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        [
            "Este enlace de pago no es válido.",
            "Este link de pagamento não é válido.",
            "This payment link is not valid.",
        ],
        "",
    )
}

pub fn unavailable() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        [
            "El pago en línea no está disponible en este momento. Intente más tarde o responda a nuestro mensaje.",
            "O pagamento online não está disponível agora. Tente mais tarde ou responda à nossa mensagem.",
            "Paying online is not available right now. Please try later or reply to our message.",
        ],
        "",
    )
}

pub fn done() -> Response {
    page(
        StatusCode::OK,
        [
            "Gracias. Cuando el pago se confirme, dejaremos de enviarle recordatorios de esta factura.",
            "Obrigado. Quando o pagamento for confirmado, deixaremos de enviar lembretes desta fatura.",
            "Thank you. Once the payment is confirmed, we will stop sending reminders about this invoice.",
        ],
        "",
    )
}

/// The sandbox's checkout: what is asked, and a button that pays it (no money moves).
pub fn sandbox_checkout(checkout_id: &str, amount: &str) -> Response {
    page(
        StatusCode::OK,
        [
            &format!("Pago de prueba (sandbox): {amount}"),
            &format!("Pagamento de teste (sandbox): {amount}"),
            &format!("Test payment (sandbox): {amount}"),
        ],
        &format!(
            "<form method=\"post\" action=\"/pay/sandbox/{checkout_id}\">\
             <button id=\"pay\" type=\"submit\">Pagar / Pay</button></form>"
        ),
    )
}
