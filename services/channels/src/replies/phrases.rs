//! The phrase table: what debtors write for each intent, in Spanish, Portuguese and English,
//! as regular expressions over the normalised text (lowercase, no accents or punctuation, common
//! SMS spellings written out; see `normalize`). Each entry is one way of saying it; a comment
//! gives an example where the pattern is not obvious.

/// Asking to stop being contacted, in any reasonable way (the FCC's 2024 rule, Colombia's
/// Law 1581 and Reg F all require honouring it). Checked first: a reply that also says it paid
/// or promises to pay is still an opt-out.
pub const OPT_OUT: &[&str] = &[
    // The whole message is a keyword (Twilio's defaults, and Spanish and Portuguese ones).
    r"^(stop|stopall|unsubscribe|end|quit|revoke|optout|opt out|cancel|baja|parar|para|basta|ya basta|chega|cancelar|alto|detener|sair|pare|descadastrar|remover|remove)( (por favor|please|ya|ja|now))?$",
    // A keyword anywhere ("STOP a estos mensajes").
    r"\b(stop|stopall|unsubscribe|optout|opt out|opt me out|parem|paren)\b",
    r"\b(desuscrib|desinscrib|descadastr|desafili)",
    r"\b(darme|dar|denme|den|darnos|dame|doy|dan|de) de (baja|vaja)\b",
    // Spanish: "no me escriban", "no vuelvan a escribir", "dejen de llamarme", "absténganse".
    r"\b(no|ni) (me |nos |le |les |lo |la |los |las )?(vuelv\w* a |volver a |sig\w* |anden |esten |estes |este |sigan |)(escrib|escriv|contact|llam|mand|envi|molest|busq|busc|jod|fastidi|text|whats|acos|marc|marq|telefon|ching|fried|friegu)",
    // "me opongo a recibir", "no deseo ser contactado", "déjenme en paz", "deixarem em paz".
    r"\b(me opongo|me oponho|nos oponemos|oponho me|i object) (a|to)\b|\bderecho de oposicion\b",
    r"\b(no|nao) (deseo|desejo|quiero|quero|queremos) ser (contactad|contatad|llamad|molestad|incomodad|importunad)",
    r"\b(dej|deix)\w* (\w+ ){0,1}(en|em) paz\b",
    r"^(baja|vaja|baixa)\b",
    r"\b(borra|borre|apaga|apague|elimina|elimine|tira|tire) (mi|meu|o meu|my|este|ese|esse|el) (numero|telefono|telefone|celular|contacto|contato|number|email|correo|dato|datos|dados)\b",
    r"\b(sacame|saquenme|sacanos|sacarme|tirame|tirenme) de\b",
    r"\bbloque(ando|ei|arei|are|aremos|amos|ado este|ar este|ar o|ar esse)\b",
    r"\b(desinscr|dessubscr|desubscr)",
    r"\b(pedi|pedimos|pido|pedido) .{0,30}\b(parar|pararem|que paren|que parem|que pare|la baja|a baixa)\b",
    r"\b(switch|turn|shut) (these|the|those|this|my|your|all) (\w+ ){0,2}(reminders|alerts|notifications|messages|texts) off\b",
    r"^(me esquece|me esquecam|esquece|esquecam|olvidame|olvidenme|bloqueado|bloqueada|blocked)$",
    r"\b(nao|no) (conheco|conozco|know) (nenhum|nenhuma|ningun|ninguna|any|no|a|o|al|el)\b",
    // "turn off these notifications", "desative os avisos", "apaguen los recordatorios".
    r"\b(turn off|switch off|shut off|deactivate|disable|desativ\w*|desactiv\w*|desabilit\w*|deshabilit\w*|apag\w*|silenci\w*|suspend\w*) (\w+ ){0,3}(notific|alert|aviso|recordatorio|lembrete|reminder|mensag|mensaj|message|sms|texts)",
    r"^(sair|baja|vaja|stop|unsubscribe|parar|descadastrar)\b|\bbaja baja\b",
    r"\bno (usar|utilizar|usen|utilicen|usem) (mas |mais |)(este|mi|el|esse|meu|o) (numero|whatsapp|correo|email|telefono|telefone|celular|chat)",
    r"\bquit it\b|\b(hittin|hitting) (up )?my (line|phone)\b|\brefrain from\b",
    r"\b(prefiero|prefiro|only|solo|somente|apenas) .{0,30}\b(by post|por carta|por escrito|in writing|by mail)\b",
    r"\b(no longer|dont|do not|no) (wish|want|quiero|deseo) (to |)(receive|get|be contacted|be called|recibir|ser contactad)",
    r"\b(dej|par|termin|deix)\w* de (me |nos |lo |la |)(marc|marq|escrib|escriv|contact|llam|mand|envi|molest|jod|fastidi|webi|hinch|insist|acos|busc|text|whats|mensaj)",
    r"\bdejen?me en paz\b|\bdejenme tranquil",
    r"\babsten\w* de (contact|escrib|llam|comunic|mand|envi)",
    r"\bces(e|en|ar)\b|\bcease\b",
    r"\b(no|ya no) (quiero|queremos|deseo|deseamos) (mas |seguir |)(recibi|mensaj|correo|mail|email|llamad|contact|notific|que me|que nos|sms|whats)",
    r"\b(quiten|quitar|quitenme|quitame|saquen|sacar|saquenme|sacarme|sacame|sacanos|borrame|eliminame|tirame|borren|borrar|borrenme|eliminen|eliminar|elimine|eliminenme|remuevan|remover|remova|removam|remocao|retiren|retirar|retirem|tiren|tirem|tirar|tira|exclua|excluam|excluir|exclusao|apaguem|apagar|apaguen|supresion|suprimir|supriman|delete|remove|take|dar de baja|desvincular|desvinculen|desvinculem)(me|nos|la|lo|las|los)?\b .{0,80}\b(lista|listas|base|datos|dados|numero|registro|registros|cadastro|contatos|contato|contacto|telefone|telefono|sistema|email|correo|list|database|records|system)\b",
    r"\brevo(co|ca|car|cacion|go|gar|gacao|ke|king)\b",
    r"\b(no|nao) autoriz\w* (que me |que nos |)(mas |mais |)(el |o |)(contact|contat|llam|lig|mensaj|mensag|tratamiento|uso|envio)",
    // Wrong number: this number is not the debtor's, so it is never written to again.
    r"\b(numero|telefono|celular|cel|email|correo) (equivocado|errado|incorrecto|errad)\b",
    r"\b(wrong|incorrect) (number|person|email)\b",
    r"\bse equivoc\w* de (numero|persona)\b|\bpessoa errada\b|\be engano\b",
    // A threat to report it if it goes on ("si siguen hago la denuncia", "se continuarem").
    r"\bsi (me |nos |)(vuelv|sig|continu|insist)\w* (a |)(mand|escrib|llam|molest|envi|contact|con|marc)",
    r"\b(spam|demando|demandar|demandarlos|los demando|processo voces|processar|sue you|suing)\b",
    r"\bsa(ir|lir) d\w* (\w+ )?lista\b|\b(nao faz|no forma) mais parte\b|\bnao faz mais parte\b|\bno longer (with|part of)\b",
    r"\bquit \w+in(g)?\b|\b(blowing|blowin|blow) up (my |the )?(phone|line|cell)\b",
    r"\bse (voces |vcs |)(continu|insist|me lig|me mand|ligar|mandar)\w*",
    r"\bif (you |u |)(keep|continue|contact|call|text|message|email)\w*|\bif i (get|receive) (one more|another|any more)",
    r"\b(profeco|procon|cfpb|ftc|fcc|reclame aqui|defensa del consumidor|condusef|sernac|indecopi|superintendencia)\b",
    r"\b(acoso|acosando|hostig|harass|assedio)",
    // Portuguese: "não me procurem", "parem de ligar", "não quero mais receber", "chega de mensagem".
    r"\b(nao|n) (me |nos |)(procur|lig|mand|envi|escrev|contat|incomod|perturb|perseg|import)\w* (mais|nunca)\b",
    r"\b(nao|n) (me|nos) (procur|lig|mand|envi|escrev|contat|contact|incomod|perturb|perseg|import|telefon)",
    r"\bpar\w* de (me |nos |)(mand|envi|lig|escrev|encher|incomod|perturb|cobr|contat|importun|perseg|msg|mensag)",
    r"\b(nao|n) (quero|queremos|desejo|desejamos) (mais |)(receber|mensag|email|sms|ligac|contat|whats|zap)",
    r"\b(chega|basta|no mas|nada mas|enough|no more|pare com|para com) (ya |ja |)(de |com |con |of |)(mensag|mensaj|msg|llamad|ligac|correo|email|text|whats|zap|sms|spam|call|cobranz|cobranc)",
    r"\bme (deixem|deixa) em paz\b",
    r"\b(nao|no|n) (insist|insistam|insistan|insistir)",
    r"\b(lawyer|attorney|abogado|abogada|advogado|advogada)\b",
    r"\b(retiro|revoco|no doy|no otorgo|withdraw|revoke|no longer|do not|dont|nao dou) .{0,20}\b(consent|consentimiento|consentimento|autorizacion|autorizacao)",
    r"\b(nao|no|ya no) (usa|utiliza|es de|e de|e da|e do|pertenece)\b .{0,30}\b(numero|telefono|telefone|celular|este|esse|esta|essa)\b",
    r"\b(no longer) (work|works|use|uses|live|lives)\b|\b(doesnt|does not) (work|live|lives) (here|there|at|with|for (you|this|that|the))\b|\b(doesnt|does not) (use|uses) (this|that|the)\b|\bya no trabaja\b|\bnao trabalha mais\b",
    r"\b(fallecio|murio|falleci|faleceu|morreu|passed away|deceased)\b",
    r"\b(nao|no|n) (quero|quiero|queremos) (mais|mas) saber\b",
    r"\bbloque(a|ia|ar|o|e|en|em)\b|\bblock (me|this|your|you)\b",
    // English: "do not text this number", "remove me", "take me off", "leave me alone".
    r"\b(do not|dont|never|pls dont|please dont) (ever |)(contact|text|call|email|message|write|msg|reach)",
    r"\b(stop|quit|cease) (\w+ )?(texting|calling|emailing|messaging|contacting|sending|harass|bother|writing|msg|reaching)",
    r"\bremove (me|us|my|this|our|it|the number|that number)\b|\bme (exclui|exclua|excluam|excluir|tira|tirem|remove|remova|removam|apaga|apague|apaguem|deleta|deletem)\b|\btake (me|us|my \w+|this number) off\b",
    r"\bleave (me|us) alone\b|\blose (my|this) number\b",
    // "ya basta de escribirme", "cancelar mensajes", "parenle ya", "nao entre mais em contato".
    r"\b(basta|ya basta|chega) (ya |ja |)(de|com|con) (escrib|mand|llam|molest|contact|insist|ligar|mandar|escrever|mensag|mensaj)",
    r"\bcancel\w* (\w+ ){0,2}(mensaj|mensag|msj|envio|sms|notific|whats|correos|llamad|ligac|recordatorio|lembrete)",
    r"\b(parenle|parale|parenla|parenle ya)\b",
    r"\b(nao|n|no) (entre|entrem|entra|entren|entres|entrar) (mais |mas |)(em |en |)(contato|contacto)",
    r"\bno (quiero|queremos|deseo) (ningun|ninguna|ningun tipo de) (contacto|mensaje|llamada|comunicacion|notificacion)",
    r"\bno (quiero|queremos) saber (mas |)nada\b",
    r"\b(deseo|quiero|prefiero|desejo|quero|prefiro|solicito) (no|nao) (recibir|receber|ser contactad|ser contatad|que me)",
    r"\b(no|nao) (recibir|receber) (mas|mais)\b",
    r"\bdar\w* de baja\b|\b(solicit|pid|ped|pido|quiero|favor)\w* .{0,20}\bbaja\b",
    r"\b(pertenece|pertence|es de|e de|belongs to) (a |)(otra persona|outra pessoa|someone else|alguien mas|otro)\b",
    r"\b(troquei|cambie|mude) de (numero|celular|telefono|telefone)\b",
    // A short command about the messages themselves: "parar mensajes", "cancelar suscripcion".
    r"\b(parar|para|pare|detener|frenar|suspender|suspendan|suspende) (los |las |os |as |con los |)(mensaj|mensag|msj|msg|sms|whats|zap|envio|notific|llamad|ligac|correos|emails)",
    r"\bcancel\w* (la |mi |a |minha |my |)(suscripcion|subscricao|assinatura|subscription|inscripcion|inscricao)\b",
    r"\b(nao|n|no) (me |nos |)(chama|chame|chamem|llamen|llames|escreva|escrevam) (mais|mas|nunca)\b",
    r"\b(borren|borrenlo|borrenla|borrar|apaguem|apague|eliminen|elimina|delete)(lo|la|me|nos|)\b",
    r"\b(lo|la) compre hace\b|\bya no es (de|del) (la persona|el senor|la senora|quien|q|que)\b|\b(ya no|no) es (el|la) (persona|numero|telefono) (que|q)\b",
    r"^(salir|sair|salirme|sairme|me salgo|desuscribir|baja ya)( por favor| please| ja| ya|)$",
    r"\bpor (whatsapp|whats|zap|sms|telefone|telefono|llamada|ligacao) (nao|no)$|\b(so|solo|somente|apenas|only) (aceito|acepto|accept)\b",
    r"\b(nao|n) (liguem|ligue|mandem|enviem|escrevam|contatem|procurem|chamem|incomodem|perturbem)\b",
    r"\b(nao|n|no|dont|do not) (me |)(liguem|ligue|llamen|llames|llame|escriban|manden|mandem|call|text|contact|contacten|busquen|procurem) (\w+ ){0,3}(trabalho|trabajo|oficina|escritorio|work|office|job)\b",
    r"\bcess(em|e|ar|ou)\b",
    // Data-protection wording: "derecho de oposición", "supresión de mis datos", LGPD.
    r"\b(derecho de oposicion|derecho de supresion|direito de oposicao|lgpd|habeas data|ley 1581|gdpr)\b|\b(suprimid|suprimir|eliminad|borrad|excluid|apagad)\w* (mis|meus|os meus|my) (datos|dados|data)\b|\b(no|nao) se me contacte\b",
    r"\b(no|nao|n) (mas|mais) (msj|msjs|msg|msgs|mensaj|mensag|sms|whats|zap|llamad|ligac|correos|emails|textos)",
    r"\b(nao|n|no) (quero|quiero|queremos) (mais |mas |)(ser|seguir siendo|continuar sendo) (contatad|contactad|llamad|ligad|molestad|incomodad|cobrad)",
    r"\bno (me |nos |)(hablen|hables|hable|vuelvan a hablar|volvais a|volvais|vuelvas a|vuelva a) ",
    r"\b(no conozco|nao conheco|dont know|do not know) (a |)(ese|esa|esse|essa|this|that|la|el|o|a) (senor|senora|persona|pessoa|person|guy|lady|moco|moca|cliente)\b",
    r"\b(os|los|les|te|lo|vos) denuncio\b|\bcomo vuelva a\b",
    r"\b(y |e |)(no|nao) (por|pelo|via) (whatsapp|whats|zap|sms|telefono|telefone|llamadas|ligacoes|mensajes|mensagens|este medio|aqui)\b",
];

/// What might be an opt-out, read after `OPT_OUT`: a "no", "stop" or "enough" a few words before
/// messages, calls or a channel ("no mas msjs porfa", "chega de zap", "dont want ur texts").
/// Opt-out recall comes first, so these lean wide; `NOT_OPT_OUT` keeps out the replies that only
/// say a message did not arrive or could not be read.
pub const MAYBE_OPT_OUT: &[&str] = &[
    r"\b(no|nao|n|ya no|ja nao|nunca|never|dont|do not|stop|basta|chega|pare|parem|paren|dejen|deja|deixem|deixa|cancel\w*|quit|enough|sin|sem|nada de)\b( \w+){0,4} (mensaj\w*|mensag\w*|msj\w*|msgs?|sms|whats\w*|zap|wpp|llamad\w*|ligac\w*|ligando|llamando|texts?|texting|messages?|messaging|calls?|calling|correos?|emails?|recordatorios?|lembretes?|notificacion\w*|notificac\w*|avisos?)\b",
];

/// A last look before a reply is left to a person as "other": a word about stopping, blocking,
/// removing or not wanting (`STOP_WORD`) anywhere in it together with a word about messages,
/// calls, a channel or a contact list (`CONTACT_WORD`) makes it an opt-out, unless `NOT_OPT_OUT`
/// says it is about a message that did not arrive. Opt-out recall comes first: a debtor who
/// meant something else loses a channel, one who meant this and was ignored is harassed.
pub const STOP_WORD: &str = r"\b(desativ|desactiv|desabilit|deshabilit|bloq|block|opor|opon|opong|object|no longer|ya no|ja nao|no more|nunca mais|nunca mas|dont want|do not want|dont wish|do not wish|no deseo|nao desejo|no quiero|nao quero|stop|parar|paren|parem|pare|dejen|deixem|remov|borr|apag|elimin|exclu|delet|unsub|baja|sair|salir|enough|chega|basta|harto|harta|arto|tired of|sick of|dej\w* de|deix\w* de|esquec|olvid|permiso|permissao|permission|rather you|no me interesa|nao me interessa|not interested|repep|do not call)";

/// See `STOP_WORD`.
pub const CONTACT_WORD: &str = r"\b(mensaj|mensag|msj|msg|sms|notific|alert|llamad|ligac|call|text|whats|zap|wpp|correo|email|e mail|numero|number|contact|contat|cadastro|registro|records|lista|list|escrib|escriv|escrev|llam|yam|lig(a|ar|am|ue|uem|ando|uen)\b|reminder|recordatorio|lembrete|aviso)";

/// Replies about a message that did not arrive or could not be opened: never an opt-out by
/// `MAYBE_OPT_OUT` alone.
pub const NOT_OPT_OUT: &[&str] = &[
    // Portuguese "no email", "no zap" is "in the email": something sent there.
    r"\b(mandei|enviei|mando|envio|mandamos|enviamos|manda|envia|mande|envie|sent|send|anexei|anexo|adjunto|segue)\b .{0,40}\b(no|pelo|por el|por|in|by|via|al|ao) (email|e mail|mail|whats\w*|zap|sms|correo|wpp)\b",
    // An automatic out-of-office answer.
    r"\b(sem acesso|sin acceso|without access|out of office|fuera de la oficina|ferias|vacaciones|vacation|resposta automatica|respuesta automatica|mensagem automatica|mensaje automatico|auto reply)\b",
    r"\b(llego|llegaron|llega|recibi|recibo|recibimos|chegou|chega o|recebi|recebo|received|receive|got|get|link|enlace|abrir|abre|abro|open|ver|veo|vejo|see|entiendo|entendi|entendo|understand|funciona|funcionou|works|aparece|carga|carrega|loads?)\b",
];

/// Claiming the debt is already paid (Latin American Spanish "cancelar" is paying it).
pub const ALREADY_PAID: &[&str] = &[
    // Spanish: "ya pagué", "ya la salde", "ya cancelé", "ya hice la transferencia".
    r"\bya (\w+ ){0,2}(pague|pagamos|pagaron|pagado|pagada|pagados|pagadas|cancele|cancelamos|cancelaron|cancelado|cancelada|transferi|transferimos|deposite|depositamos|consigne|consignamos|abone|abonamos|salde|saldamos|saldado|saldada|liquide|liquidamos|liquidado|hice|hicimos|realice|realizamos|efectue|efectuamos|mande|mandamos|envie|enviamos|cubri|cubrimos|gire|giramos|yapee|yapie|plinee|nequie|page)\b",
    r"\b(autopay|auto pay|debito automatico|debito automatico|already took)\b",
    r"\b(pago|pague|pagamos|pagaron|deposito|transfirio|cancelo|abono) (\w+ ){0,4}(semana pasada|mes pasado|ayer|anteayer|antier|anoche|hace)\b",
    r"\b(lo|la|los|las) (pago|cancelo|deposito|transfirio) (mi|su) \w+",
    r"\b(he|hemos|ha|han) (pagado|cancelado|transferido|depositado|abonado|consignado|hecho el pago|realizado el pago|saldado|liquidado)\b",
    r"^(pagado|pagada|paid|cancelado|cancelada|quitado|quitada|done)\b|\bya quedo\b",
    r"\b(se|me) (desconto|debito|cargo|cobro) .{0,30}\b(tarjeta|cuenta|automatic)\w*",
    r"\b(pago|transferencia|deposito|giro|cheque) (salio|se envio|se fue|se hizo|se realizo|fue enviad)",
    r"\b(empresa|esposo|esposa|hermano|hermana|mama|papa|hijo|hija|jefe|contador|contadora|socio|marido|mujer|tesoreria|wife|husband|mom|dad|son|daughter|boss) (ya |)(les |le |me |nos |)(realizo|hizo|efectuo|pago|cancelo|transfirio|deposito|consigno|paid)\b",
    r"\b(pague|pagamos|transferi|transferimos|deposite|depositamos|consigne|consignamos|abone|abonamos|salde|liquide) (ayer|hoy|el|la|esta|este|antier|anoche|anteayer|hace|con|por|en|desde|via|todo|toda|lo|la|los|al)\b",
    r"\b(se|fue|fueron|ha sido|esta|estan|quedo|quedaron|quedamos|estamos) (pagad|cancelad|saldad|liquidad|abonad|a paz y salvo|al dia|paz y salvo)\w*",
    r"\bse (pago|cancelo|abono|transfirio|deposito|consigno|realizo el pago|hizo el pago|hizo la transferencia)\b",
    r"\b(pago|transferencia|deposito|consignacion) .{0,60}\b(se realizo|se hizo|se efectuo|fue (realizad|hech|efectuad|enviad|aplicad)\w*)",
    r"\b(hice|hicimos|realice|realizamos|efectue|efectuamos) (el|la|un|una) (pago|deposito|transferencia|tranferencia|trasferencia|consignacion|abono|yape|plin|bizum|nequi|giro|sinpe|spei|pse)\b",
    r"\b(mande|mandamos|envie|enviamos) (la plata|el dinero|el pago|la transferencia|el deposito)\b",
    r"\b(comprobante|voucher|soporte de pago|constancia de pago|paz y salvo)\b",
    r"\bya no (debo|devo|debemos|devemos|owe|le debo|les debo)\b",
    r"\b(direct debit|standing order|auto debit|autopayment) .{0,40}\b(went out|came out|was taken|taken|cleared)\b",
    r"\b(se les|se le|ya se) (pago|cubrio|abono|transfirio|deposito)\b|\bcarta finiquito\b|\b(procedi|procedemos) ao pagamento\b",
    r"\b(payment|transfer|check|cheque) went out\b|\b(le|les) deje el (cheque|dinero|pago|efectivo)\b",
    r"^(pago|pagado|pagada|paid)$|\bprocessed (the |a |)payment\b|\b(le |les |)deje el (cheque|dinero|efectivo|pago)\b",
    r"\bja (\w+ ){0,1}(efectuei|efetuou|efectuou|realizou|fez|liquidei|liquidamos)\b|\bya me (lo |la |)(cobraron|descontaron|debitaron)\b",
    r"\b(pagamento|pago) .{0,30}\b(ja foi|foi) (feito|realizado|efetuado|efectuado)\b",
    r"\b(fue|foi|ha sido|has been) (cubiert|abonad|liquidad|saldad|coberta|quitad)\w*",
    r"\b(on|por|em|en) (direct debit|debito automatico|autopay|auto pay|domiciliacion)\b",
    r"\b(cheque|check|pago|dinero|efectivo|dinheiro) .{0,30}\b(fue entregad|foi entregu|was handed|was delivered|se entrego)\w*",
    r"\bacab\w* de (descontar|debitar|cobrar|pagar|transferir|depositar|consignar|hacer el pago|fazer o pix|fazer o pagamento|mandar el pago)\b",
    r"\bfue (por|via|con) (yape|plin|nequi|pix|transferencia|deposito|daviplata|mercado pago)\b|\bya lo solte\b",
    r"\b(pague|pagamos|paguei|pagamos) (al|a la|a su|a ustedes|ao|a voces) (cobrador|cobradora|asesor|gestor|senor|senora|moco|moca|empresa|banco|tienda|oficina)\b",
    // Portuguese: "já paguei", "já tá pago", "paguei ontem", "segue comprovante", "dar baixa".
    r"\bja (\w+ ){0,2}(paguei|pagamos|pago|paga|pagos|quitei|quitamos|quitado|quitada|quitou|transferi|depositei|efetuei|realizei|acertei|acertamos|pagou)\b",
    r"\b(pagou|pagaram|quitou|quitaram|transferiu|depositou)\b",
    r"\b(pagamento|pix|ted|transferencia|deposito|boleto) (\w+ ){0,1}(foi|ja foi) (realizad|feit|efetuad|pag|enviad|compensad)\w*",
    r"\b(mandei|enviei|fiz|fizemos|mandamos|enviamos|passei|passamos|caiu) (o |a |um |uma |)(pix|ted|doc|transferencia|deposito|pagamento)\b",
    r"\b(venmod|venmoed|zelled|paypald|paypaled|cashappd|cashapped)\b",
    r"\b(transferencia|pix|pagamento|deposito|ted|pago|consignacion) (feit|realizad|efetuad|enviad|concluid|hech|efectuad)\w*",
    r"\b(paguei|pagamos|quitei|quitamos|transferi|depositei) ",
    r"\b(foi|esta|estao|ta|estava) (pag|quitad|debitad|compensad)\w*",
    r"\b(fiz|fizemos|efetuei|realizei) (o|a|um|uma) (pix|pagamento|transferencia|deposito|ted|doc)\b",
    r"\b(comprovante|recibo)\b",
    r"\bdar baixa\b",
    // English: "already paid", "paid yesterday", "it's been taken care of", "confirmation attached".
    r"\balready (been |)(paid|sent|made|pay|settled|took care|taken care|covered|wired|transferred|mailed)",
    r"\b(paid|payed|settled|wired)\b",
    r"\b(took|taken) care of\b",
    r"\b(sent|mailed|made) (the |my |a |our |)(payment|money|check|funds|transfer)\b",
    r"\bsent (it|that|this|the money|the funds|you)\b",
    r"\b(payment|transfer|check|funds|wire) (was|were|has been|have been) (sent|made|issued|mailed|processed|wired|remitted|cashed|deposited)\b",
    r"\b(cleared|went through|was cashed|remittance)\b",
    r"\b(invoice|bill|balance|amount|it) (was|were|has been|have been) (remitted|processed|paid|settled)\b",
    r"\bprocessed (this|the|your|that) (invoice|bill|payment)\b",
    r"\b(fue|foi) (procesad|processad)\w*",
    r"\b(payment|transfer|it) went (thru|through)\b",
    r"\b(le di|les di|entregue|entregamos|deixei|entreguei|dei) (el |la |o |a |)(dinero|plata|efectivo|dinheiro|grana|giro|giro postal|cheque)\b",
    r"\b(gave|handed) (the |)(cash|money|check|payment) to\b",
    r"\b(dropped off|dropped|left|handed) (a |the |)(money order|check|cash|payment)\b",
    r"^(paguei|pague|pagado|ya pague|ja paguei)\b",
    r"\b(receipt|confirmation number|confirmation attached|proof of payment|transaction id)\b",
    r"\b(card|account) (was|got|has been) (charged|debited)\b",
];

/// Spans that look like a payment claim and are not one: removed before `ALREADY_PAID` is read
/// ("I get paid on the 15th", "aún no pagué", "I haven't paid").
pub const NOT_PAID: &[&str] = &[
    r"\b(get|gets|getting|got|be|being|will be) paid\b",
    r"\b(provide|send|share|need|request)\w* (\w+ ){0,8}(remittance|payment) (details|information|info|instructions)\b",
    // "en cuanto me pague el patrón" is the debtor being paid, not paying.
    r"\b(en cuanto|cuando|apenas|luego que|assim que|quando) (me |nos |)(pague|paguen|paguem|pagar|cobre|cobremos)\b",
    r"\b(e|y) (ja|ya) (pago|pagamos)\b",
    r"\bpague con (\w+ ){0,3}(atraso|retraso|demora)\b|\bpaid on time\b",
    r"\bya (hice|hicimos|realice|puse|pusimos) (la|el|una|un) (denuncia|reclamo|queja|reclamacion|demanda)\b",
    r"\b(on|upon) receipt\b",
    r"\b(settled|paid|pago|pagado) (in|with|through|en|con) (the|el|la) (refinance|refinancing|renegotiation|refinanciacion|renegociacion)\b",
    r"\b(ate|hasta|by) (o |el |)(dia |)\d+ (\w+ ){0,1}(ta|esta|estara|fica|will be) (pago|pagado|paid)\b",
    r"\b(comprobante|comprovante|receipt) (de la |da |de |of (the |my |)|for (the |my |))(devolucion|devolucao|baja|cancelacion|cancelamento|return|refund)\b",
    // "ya mandé fotos al vendedor" sends evidence, not money.
    r"\b(mande|envie|mandei|enviei|sent|send) (las |unas |as |the |some |)(fotos|foto|photos|pictures|evidencia|evidencias|pruebas|provas|videos)\b",
    r"\b(no|nao|not|havent|hasnt|didnt|never|todavia no|aun no|ainda nao|ainda n|have not|has not|did not) (\w+ ){0,2}(pagado|pague|pagamos|pagado|pagada|paguei|pago|paid|pay|cancele)\b",
    r"\b(voy a|vamos a|vou|vamos) (\w+ ){0,1}(mandar|enviar) (el |o |)(comprobante|comprovante)",
    r"\b(until|till|til|hasta que|ate) (\w+ ){0,2}(paid|pague|pagado|pago|quitad)\w*",
    r"\b(should|will|would|gonna|going to|can|could|ll) have (\w+ ){0,3}paid\b",
];

/// Contesting the debt or the invoice. Checked after a payment claim.
pub const DISPUTE: &[&str] = &[
    // Spanish.
    r"\bno (le |les |te |)(debo|debemos)\b",
    r"\bno (la |lo |las |los |le |)(reconoz|reconocemos)|\b(desconozco|desconocemos)",
    r"\bno (es|son) (mi|mia|mio|mias|mios|nuestra|nuestro|nuestras|de nosotros)\b",
    r"\bno (nos |me |)corresponde\b",
    r"\b(monto|valor|cobro|importe|total|factura|cuenta|iva|precio|saldo) .{0,25}\b(mal|incorrect|equivocad|errone|error)\w*",
    r"\b(error|errores) en (la|el) (factura|cobro|monto|valor|iva|cuenta|precio)\b",
    r"\bcobr\w* (dos veces|doble|de mas|demas)|\bdoble cobro\b|\bcobro (doble|duplicado|indebido|injusto)",
    r"\b(nunca|jamas) (he|hemos) sido (cliente|clientes)\b|\bnunca fui cliente\b|\bnever (been|was) (a |your |)(customer|client)\b",
    r"\blo debe (mi|su|el|la)\b|\b(mi|meu|my) ex\b|\b(cancelled|canceled) (in|on|back in|last)\b",
    r"\bnunca (fiz|fizemos|tive|tivemos) (compra|pedido|contrato|cadastro|conta)\b|\bnunca (instalaram|entregaram|vieram|veio|vino|vinieron|aparecio)\b",
    r"\bnada que ver\b|\bnada a ver\b|\bnothing to do with (me|us)\b|\bes de mi ex\b",
    r"\bnunca (funciono|funcionou|sirvio)\b|\bnever worked\b|\bsin (senal|servicio|internet|luz) \b|\bcaduc|\bdivergen",
    r"\b(nunca|jamas) (me |nos |lo |la |los |las |)(recibi|recibimos|llego|llegaron|contrate|contratamos|pedi|pedimos|solicite|compre|compramos|saque|tuve|tuvimos|firme|autorice|use|acorde|acordamos|instalaron|entregaron|prestaron)",
    r"\b(nunca|jamas) (he|hemos|habia|habiamos) (comprado|contratado|pedido|solicitado|recibido|tenido|firmado|usado|autorizado)\b",
    r"\bno (lo |la |los |las |)(acepto|aceptamos)\b|\bno estaba en el contrato\b|\bno (procede|aplica)\b|\bimprocedente\b",
    r"\b(servicio|servico|service|internet|linea|linha|sistema) (\w+ ){0,1}(estuvo|estaba|esta|ficou|esteve|was|has been) (caid|sin |fora|down|out|suspendid|cortad|parad)",
    r"\bprescre|\bstatute of limitation|\btime barred\b",
    r"\bno lo (pedi|compre|contrate|solicite|autorice)\b|\balguien (uso|usaron|saco|hizo|compro)\b|\bno fui yo\b",
    r"\bno coincide\b|\bno (son|es|era|eran) (lo|los|la|las|el) (que|acordado|pactado)\b|\bque no existe\b",
    r"\b(seguir|siguen|sigan|continuan|continuam|continuar) cobr",
    r"\bcancele (el|ese|este|mi|la|esa) (plan|servicio|contrato|suscripcion|linea)\b|\bprescri",
    r"\b(intereses|cargos|recargos|juros|multa|multas|taxa|taxas|fee|fees|interest) .{0,40}\b(no|nao|nunca|never|abusiv|bogus|indevid|injust|ilegal)",
    r"\b(llego|vino|llegaron|vinieron|esta|estaba) (\w+ ){0,2}(danad|rot|defectuos|incomplet|vencid|mal estado|equivocad)",
    r"\b(devolvi|devolvimos|devolucion|devuelto|devuelta|devueltos|devueltas)\b",
    r"\b(estafa|fraude|robo)\b",
    r"\bno (estoy|estamos) de acuerdo\b",
    r"\bnota (de |)credito\b",
    r"\b(reclamo|reclamacion|impugn|disput|objet)\w*",
    r"\bde donde (sacan|sacaron|salio) (esa|esta|la|el|ese|este) (deuda|factura|cobro|cuenta|monto|saldo)\b",
    r"\bno (pienso|vamos a|voy a|pensamos) pagar\w*",
    r"\b(robaron|robo de|roubaram|roubo de|suplantaron|suplantacion) (la |a |mi |minha |mis |meus |)(identidad|identidade|datos|dados|documentos|cedula|tarjeta)\b",
    r"\bno (saque|contrate|pedi|solicite|autorice|firme|compre|adquiri|tome)\b",
    r"\bno (tengo|tenemos) (ninguna |ningun |)(cuenta|deuda|credito|contrato|relacion|prestamo) con\b",
    r"\bduplicad[oa]s?\b",
    r"\bno (tengo|tenemos) (ninguna|ningun|ni una) (cuenta|deuda|credito|contrato|relacion|prestamo|factura)\b|\b(nao|n) (tenho|temos) (nenhuma|nenhum) (conta|divida|contrato|emprestimo)\b",
    r"\b(intereses|interes|cargos|recargos|calculo|mora|juros|multa) .{0,25}\b(mal|incorrect|equivocad|errone|errad|inflad|abusiv)\w*",
    r"\bnunca se (hizo|realizo|presto|entrego|instalo|hicieron|realizaron)\b",
    r"\binflad[oa]s?\b|\bde donde (salen|sale)\b",
    r"\b(dos veces|duas vezes|2 vezes|2 veces|2x|twice)\b",
    r"\b(this is|esto es|eso es|isso e|is) (not valid|no valid|nao valid|invalid)\w*|\bno (es|son) (el |la |los |las |)(nuestr|mio|mia)\w*\b",
    r"\bdiferente (do|de lo|del|da) (acordad|pactad|combinad|cotizad|orcad)\w*|\bdifferent from (the |what we |)(agreed|quote)\w*|\b(nova fatura|factura corregida|nueva factura)\b",
    r"\b(ya|ja) (la |lo |a |o |)(habia |tinha |)(sido |)(refinanci|renegoci)\w*",
    r"\brefinanc(e|ed|ing)\b",
    r"\b(signed|assinado|firmado) (agreement|contract|contrato)\b|\b(mostra|mostrem|muestren|muestrenme|show me|copy of) (\w+ ){0,3}(contrato|contract|agreement)\b",
    r"\bse (refinancio|renegocio|renegociou|refinanciou)\b|\b(refinancie|renegocie|renegociei|refinanciei)\b|\bmemoria de calculo\b",
    r"\bno (la|lo|las|los) (debo|devo)\b|\berror (de|del|do) (su |seu |)sistema\b|\b(seguro|insurance) (\w+ ){0,1}(cubr|cobr|cover)\w*|\b(cubria|cubre|cobria|covered by) (el seguro|o seguro|insurance)\b",
    r"\b(nao|no) (sou|soy) (o|a|el|la) \w+|\bdevolvid\w*|\banula(cao|cion|r)\b|\bno (pago|pagare|voy a pagar|vou pagar|pagarei) (hasta|ate) que\b",
    r"\b(por que|porque|pq) (me |nos |)(cobran|siguen cobrando|estan cobrando|cobraron|me estan cobrando)\b|\bsolo (tenemos|tengo|usamos|pedimos|recibimos) \d+\b",
    r"\b\d+ (reais|pesos|soles|euros|dolares|dollars|)(,| |)(nao|no|not) \d+\b|\bya no (usaba|usaban|utilizaba|vivia|estudia|trabajaba)\b",
    r"\b(precio|preco|price|valor) (acordado|pactado|combinado|agreed) (era|was|foi)\b|\b(no|nao) (me |)cuadra\b .{0,40}\b(pague|pagado|paguei|cuotas|parcelas)\b",
    r"\b(no|nao) (soy|sou) (yo|eu)\b|\bnot me\b|\bengano de (cpf|persona|pessoa)\b",
    r"\b(nunca|jamas) (la |lo |me la |me lo |)(hicieron|realizaron|fizeram|instalaron)\b|\bno me (lo|la) (hicieron|realizaron)\b",
    r"\b(contrato|contract|agreement) (\w+ ){0,2}(assinad|firmad|signed)\w*|\b(medidor|hidrometro|meter) (\w+ ){0,2}(marca mal|esta mal|errad|wrong|malo|danad)\w*",
    r"\b(garantia|warranty)\b .{0,40}\b(no|nao|not|never|didnt)\b|\bhow you (arrived|came up) (at|with)\b",
    r"\b(never|nunca) (arrived|came|showed up|got delivered|was delivered|llego|chegou)\b",
    r"\bde donde (sacan|sacaron) (que|q)\b|\b(muestren|mostrem|show me|quero ver|quiero ver|manden|envien)\w* (\w+ ){0,2}(prueba|pruebas|prova|provas|proof|evidencia|soporte)\b",
    r"\b(prova|provas|prueba|pruebas|proof) (\w+ ){0,2}(divida|deuda|debt|cobro|cobranca)\b",
    r"\b(no|nao) es real\b|\bnao e real\b|\b(no|nao) (consumi|consumimos|usei|use|utilice|utilizei)\b|\babsurd\w*",
    r"\b(que|q) (eu |yo |)(nao|no) (pedi|pedimos|contrate|contratei|solicite|solicitei|ordered|compre|comprei)\b",
    r"\bpedi\w* \d+ .{0,40}\b(factur|cobr|mand|lleg|cheg|enviar)\w* \d+",
    r"\bno (tenia|tendria|iba a tener|tiene) (costo|cargo|cobro|custo)\b|\bnao (tinha|teria) (custo|cobranca)\b",
    r"\b(shouldnt|should not) owe\b|\b(no|nao) (deberia|deveria) (deber|dever)\b",
    r"\b(cpf|nome|dados|identidad|datos|documentos|cedula) (\w+ ){0,2}(usad|utilizad|used)\w* por\b|\b(fiz|fizemos|hice|puse) (um |una |el |la |)(bo|boletim de ocorrencia|denuncia)\b",
    r"\b(ta|esta|isso|eso|esto|tudo) (\w+ ){0,1}(errad|equivocad)\w*",
    r"\bno (tienen|tiene) (por que|porque|derecho a) cobr|\blo cancele\b|\b(la|lo) di de baja\b|\bdi de baja\b",
    r"\bnunca (lo |la |me lo |me la |)(instalaron|conectaron|activaron|entregaron)\b|\b(y|e) (me |)(quieren|quieres|quiere) cobrar\b",
    r"\b(no|nao) tengo nada con\b|\bque deuda\b|\bcomo voy a deber\b|\b(me|nos) dieron de baja\b",
    r"\b(clonaron|clonada|clonado|clonaram|clone)\b|\b(no|nao) (las|los|la|lo|as|os|a|o) (hice|fiz|realice|realizei)\b",
    r"\b(ya|ja) (estaba|estava|estaban|estavam) (incluid|incluso|incluida|pagad|cobrad)\w*",
    r"\b(es|e|eh|ta|esta) injust\w*|\bunfair\b",
    r"\b(wrong|incorrect) (rate|price|quantity|tax|terms|po)\b|\bcorrected invoice\b|\bcredit (memo|note)\b",
    r"\b(seguir|siguen|sigan) factur",
    r"\b(que|q) (no|nao) (hice|realice|fiz|fizemos|hicimos|reconozco|reconheco)\b",
    r"\b(tasa|taxa|rate|tarifa) .{0,30}\b(no es la|nao e a|not the|no corresponde|errad|equivocad|wrong|incorrect)",
    r"\b(cerre|cancele|cerramos|encerrei|fechei|closed|cancelled|canceled) (esa|esta|mi|la|essa|a|minha|that|my|the) (tarjeta|cuenta|cartao|conta|card|account|membership|membresia|plan)\b",
    r"\bwhy (am i|are we|is it) (being |still |)(billed|charged)\b",
    r"\bnunca (fiz|fizemos|tome|tomamos|saque|pedi|took|had) (\w+ ){0,1}(emprestimo|prestamo|credito|loan)\b",
    r"\b(mora|multa|late fee|recargo) (\w+ ){0,2}(mal|errad|wrong)\w*",
    r"\b(tarjeta|cuenta|cartao|conta|plan|linea|linha) (\w+ ){0,2}(la |lo |a |o |)(cerre|cancele|encerrei|cancelei|fechei)\b",
    r"\b(what is this|whats this) .{0,20}\b(fee|charge)\b",
    // Portuguese.
    r"\b(nao|n) (devo|devemos)\b",
    r"\b(desconheco|desconhecemos)|\b(nao|n) (a |o |)(reconheco|reconhecemos)",
    r"\bnunca (comprei|compramos|recebi|recebemos|contratei|contratamos|pedi|pedimos|chegou|usei|assinei|autorizei)",
    r"\b(nunca|nao) foi (prestad|entregu|realizad|feit|instalad|executad)",
    r"\b(nao|n) (aceito|aceitamos)\b|\bnao (estava|consta) no contrato\b",
    r"\b(nao|n) corresponde\b|\b(nao|n) (bate|confere)\b|\b(nao|n) (concordo|concordamos)\b|\bnao fui eu\b",
    r"\b(alguem|alguien) (usou|fez|abriu)\b|\b(no meu|em meu) (cpf|nome)\b",
    r"\bcancelei (o|esse|este|meu|a|essa) (plano|servico|contrato|assinatura|conta|cartao|linha)\b",
    r"\b(cobrado|cobrada|cobraram|cobrando|cobrou) (\w+ ){0,2}(duas vezes|em dobro|a mais|errado|indevid)",
    r"\bcobranca (indevida|duplicada|errada|abusiva)|\bem duplicidade\b",
    r"\b(valor|fatura|boleto|nota|cnpj|cpf|cobranca|conta) (\w+ ){0,3}(errad|incorret|equivocad)\w*",
    r"\b(chegou|veio|chegaram|vieram) (\w+ ){0,2}(quebrad|danificad|com defeito|estragad|incomplet|errad)",
    r"\b(devolvi|devolvemos|devolucao|devolvido|devolvida)\b",
    r"\b(nao|n) (e|eh) (meu|minha|nosso|nossa|da nossa|do meu|de nossa|da minha)\b",
    r"\b(golpe|fraude)\b",
    r"\bcontest\w*",
    r"\b(nao|n) vou pagar\b",
    r"\b(nao|n) (e|eh) devid|\bcancelei (a|o)\b",
    // English.
    r"\b(dont|do not|doesnt|does not) owe\b",
    r"\b(isnt|is not|not|aint) (my|our|mine|ours)\b",
    r"\bnever (took out|taken out|took|received|got|ordered|signed|authorized|had|used|bought|agreed|requested|opened|did business|done business)",
    r"\btwo charges\b|\bdos cargos\b|\bdois (debitos|cobrancas)\b|\bstill being (billed|charged)\b",
    r"\b(cancelled|canceled) (that|the|my|this) (subscription|service|plan|account|order|contract|membership)\b",
    r"\b(wrong|incorrect) (amount|invoice|bill|charge|total|price)\b",
    r"\b(amount|invoice|bill|charge|total|price) (is|was) (wrong|incorrect|off)\b",
    r"\b(charged|billed) (me |us |)(twice|double|two times)|\bdouble (charged|billed)\b|\bduplicate (charge|invoice|billing)\b",
    r"\b(returned|sent back|send back)\b",
    r"\b(damaged|defective|broken)\b",
    r"\b(disput|contest)\w*",
    r"\b(fraud|scam)\w*",
    r"\b(not|never|didnt|did not) (authorize|authorized|sign up|signed up)\b|\bunauthorized\b",
    r"\b(not paying|not going to pay|wont pay|will not pay)\b",
    r"\b(overcharged|overbilled)\b",
    r"\b(dont|do not|didnt|did not) recogni[sz]e\b|\bidentity\b|\bnot opened by me\b|\b(someone|somebody) (opened|used|stole)\b",
    r"\bnot in the contract\b|\b(dont|do not|wont) accept\b",
    r"\b(dont|do not|doesnt|does not) match\b|\b(dont|do not) agree\b|\bnever (told|agreed)\b",
    r"\b(didnt|did not) (get|receive) (the |any |my |our |)(goods|product|products|service|order|items|package|merchandise|delivery|shipment)\b|\b(didnt|did not) order\b",
];

/// Asking whether it is a scam ("isso é golpe?") is a question, not a dispute: removed from the
/// raw text (the question mark is gone once normalised) before `DISPUTE` is read.
pub const SCAM_QUESTION: &str =
    r"(?i)\b(scam|fraud|golpe|estafa|fraude)\b[^.!?]{0,15}\?|\bis (this|it|that) (a |)(scam|fraud)\b";

/// Paying, in the present or future (with `WHEN`, a promise).
pub const PAY: &[&str] = &[
    r"\b(pago|pagamos|pagando|pagare|pagaremos|pagaria|pagar|paso a pagar|abonar|abonaremos|abono|abonare|abonamos|deposito|depositare|depositamos|consigno|consignare|consignamos|transfiero|transferire|transferimos|cancelo|cancelare|cancelamos|giro|pagarle|pagarles|depositarle|cancelarle|liquido|liquidare|liquidamos|cubro|cubrire|yapeo|plineo|resuelvo|arreglo|regularizo|resolvo|paga|liquidar|procedere a \w+)\b",
    r"\b(le|te|les|lhe) (doy|dou|dare|voy a dar|puedo dar|vou dar|posso dar)\b|\b(clear it|sort it out|settle up|square up)\b",
    r"\b(regularizo|regularizar|regularizarei|regularizamos|soluciono|solucionare|cancelar|promise|prometo)\b",
    r"\b(le|te|les) tengo (el dinero|la plata|el pago|lo del pago)\b|\b(iremos|vamos|vou|irei) (efectuar|efetuar|fazer|realizar) (o |el |)(pagamento|pago)\b",
    r"\b(hago|hacemos|hare|haremos|faco|farei) (el |la |o |un |una |)(yape|plin|bizum|pix|nequi|transfer|transferencia|deposito|mbway|mb way)\b",
    r"\b(lo|la) saldo\b|\b(efectuarei|efetuarei|efetuaremos|realizarei|realizaremos|procederei|will make|ll make|le caigo|les caigo)\b",
    r"\b(drop it off|drop off|bring it|bring the money|bring you|mailing|mail a check|mail the check|send a check|send the check)\b",
    r"\b(do it|get it done|pay it|have it|get it)\b|\b(have|get) (\w+ ){0,3}paid\b",
    r"\b(for sure|sin falta|sem falta|seguro|com certeza|definitely|i promise|sort it|take care of it|handle it)\b",
    r"\b(hago|hacemos|hare|haremos|realizo|realizare) (el |la |un |una |)(pago|transferencia|deposito|consignacion|abono|ingreso)\b",
    r"\b(le|te|les|os) (mando|envio|paso|deposito|transfiero|abono|consigno|ingreso|liquido)\b",
    r"\b(pagarei|pagaremos|pago|pagamos|pagar|quito|quitar|quitarei|acerto|acertar|transfiro|deposito|faco o pix|fazer o pix|mando o pix|mandar o pix|faco o pagamento|fazer o pagamento)\b",
    r"\b(pagamento|pago) (sera|vai ser|queda|esta) (realizado|feito|efetuado|programado|agendado)",
    r"\b(pagamento|pago|payment|transferencia|deposito) .{0,30}\b(sera|vai ser|will be) (realizad|efetuad|feit|hech|efectuad|made|sent|processed)",
    r"\b(pay|paying|settle|settling)\b",
    r"\b(send|sending|wire|transfer|mail) (it|the money|the payment|payment|you|the rest|the balance|half|\d+)\b",
    r"\b(make|process|submit|schedule) (a |the |)payment\b",
    r"\b(coloco|coloca|colocar|ponho|boto|pongo|poner) (\w+ ){0,1}(em dia|al dia)\b",
    r"\b(abonar|abonaremos|efetuaremos|efetuarei|realizaremos|realizarei|faremos|farei|faco|faz|fazer) (o |a |el |la |)(pagamento|pix|transferencia|deposito|pago|abono)\b",
    r"\b(can do|could do|can send|can give|scheduled|check run|payment run|pay run)\b",
];

/// When, as debtors write it: weekdays, relative days, month ends, paydays, dates.
pub const WHEN: &[&str] = &[
    r"\b(this evening|esta noche|en la noche|end of week|end of the week|dia do pagamento|dia de pago|payday)\b",
    r"\bquando (o |a |)(meu |minha |)\w+ (mandar|cair|receber|pagar|depositar)\b|\bapenas (me paguen|cobre|reciba|me pague)\b|\b(en|em|in) (unas|uns|umas|about) \w+ (dias|semanas|days|weeks)\b",
    r"\b(juevez|mierc|mnn|mñn|mna|puente|despues del|despues de la|final da semana|fim da semana|fin de semana|deje que me paguen|dejame que me paguen)\b",
    r"\b(en|em|in) (un|una|dos|tres|cuatro|cinco|uma|duas|quatro|a|one|two|three|a couple of) (dias|dia|semanas|semana|mes|meses|days|day|weeks|week|month)\b",
    r"\b(lunes|martes|miercoles|jueves|viernes|sabado|domingo|manana|pasado manana|hoy|esta tarde|esta noche|fin de mes|fin del mes|finales de|principios? de|quincena|semana|proxima|proximo|siguiente|primero|enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre)\b",
    r"\b(el|dia|hasta el|antes del|para el) \d{1,2}(ro|vo|to)?\b|\b\d{1,2} de\b|\b\d{1,2} \d{1,2}\b|\b(en|em|in) \d+ (dias|semanas|meses|days|weeks)\b|\bcuando (me|cobre|reciba|llegue|cobremos|cobro)\b",
    r"\b(segunda|terca|quarta|quinta|sexta|amanha|hoje|hj|semana que vem|mes que vem|fim do mes|final do mes|comeco do mes|inicio do mes|janeiro|fevereiro|marco|junho|julho|setembro|outubro|novembro|dezembro)\b",
    r"\b(ate o dia|ate dia|ate a|assim que|quando (cair|receber|sair|entrar))\b",
    r"\ben cuanto (cobre|me paguen|me pague|reciba|me llegue|tenga|cobremos)\b|\b(aguinaldo|prima|decimo|13o|decimo terceiro|bonus|tax refund|reembolso)\b",
    r"\b(este|el|al|fin de|el proximo) (finde|fin de semana|fds)\b|\bfinde\b",
    r"\b(en la tarde|en la noche|en la manana|al rato|mas tarde|hoy mismo|mes entrante|del mes|later today)\b",
    r"\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|today|tonight|next week|next month|end of the month|end of month|this week|payday|paycheck|next check|january|february|march|april|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\b",
    r"\b(on|by|before) the \d{1,2}(st|nd|rd|th)?\b|\b\d{1,2}(st|nd|rd|th)\b|\bin \d+ (days|weeks)\b|\b(by|on|before) \d{1,2}\b",
];

/// A commitment that needs no date ("voy a pagar", "pagarei", "I'll pay", "sin falta").
pub const COMMIT: &[&str] = &[
    r"\b(voy a pagar|vamos a pagar|voy a depositar|voy a transferir|voy a cancelar|pagare|pagaremos|le prometo|te prometo|les prometo|lo juro|sin falta|dame hasta|denme hasta|deme hasta|esperenme|esperame|no puedo pagar hasta|queda programado|quedo programado)\b",
    r"\b(deme|dame|denme|me da|me de|deem|de-me|give me|gimme) (un|una|dos|tres|uma|duas|a|one|two|\d+) (dia|dias|semana|semanas|mes|meses|day|days|week|weeks|month)\b .{0,30}\b(y|e|and) (le |te |lhe |)(pago|liquido|cancelo|deposito|pagar|quito|pay|settle)",
    r"\b(me da|me de|me deem|dame|denme|deme|give me|gimme) (ate|hasta|until|till|til)\b",
    r"\b(imma|ima|gonna|going to) (have|pay|send|get)\b",
    r"\b(voy a abonar|vamos a abonar|will remit|well remit|ill put it|will put it|i got you)\b",
    r"\b(programacao|programacion|agenda|calendario|lote) de (pagos|pagamentos)\b",
    r"\b(ciclo de pagos|corrida de pagos|programacion de pagos|calendario de pagos|lote de pagos|payment run|payment cycle|ciclo de pagamentos)\b",
    r"\b(check run|scheduled (this |the |)(invoice |bill |)for payment|programad\w* para (pago|pagamento)|agendad\w* para (pago|pagamento))\b",
    r"\bme (pongo|pondre|ponemos) al dia\b|\b(fico|ficarei|vou ficar) em dia\b|\bcatch up\b",
    r"\b(vou pagar|vamos pagar|pagarei|vou quitar|vou acertar|sem falta|prometo|consigo pagar|posso pagar|vou fazer o pix|vou transferir|vou depositar)\b",
    r"\b(will pay|ill pay|i will pay|we will pay|well pay|gonna pay|going to pay|will send|ill send|gonna send|ill have it|will have it|i promise|payment will|will process|can pay|well process|ill get you|ill get it|ill take care|will take care|ill handle|will handle)\b",
];
