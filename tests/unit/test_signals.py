"""Each signal read from real-world phrasing, with the near misses that must not count."""

from __future__ import annotations

import dataclasses

import pytest

from tests.conftest import agent, customer, ticket
from worker.engine import Policy, review_reply
from worker.models import Verdict


def judge(policy: Policy, reply: str, said: str | None = None, fmt: str = "text") -> Verdict:
    earlier = [customer(said)] if said else []
    return review_reply(agent(reply, fmt=fmt), earlier, ticket(), policy)


@pytest.mark.parametrize(("reply", "kind", "count"), [
    ("I'm so sorry your blender arrived cracked.", "specific", 1),
    ("Sorry for any inconvenience.", "generic", 1),
    ("We apologise for the trouble this may have caused.", "generic", 1),
    ("Apologies for the delay with your refund.", "specific", 1),
    ("Sorry to hear that! DM us and we'll take a look. ^JS", "generic", 1),
    ("Sorry, but we can't extend that.", "generic", 1),
    # A refusal after "sorry, but" that names what is refused: the thing affected (DESIGN.md).
    ("Sorry, but the damage charge stands.", "specific", 1),
    ("Hi Kelsey, sorry, but lockouts aren't covered on the Basic plan.", "specific", 1),
    ("Sorry, but we can't refund an App Store charge from our side.", "specific", 1),
    ("Sorry, but at the moment we can't do that.", "generic", 1),
    # ... also without "but", after a name, and whatever the verb, as the fifth to thirteenth authors label it.
    ("Sorry, but at the moment we can't offer a replacement.", "specific", 1),
    ("Sorry Dave, we can't say whether microbore will work without seeing it.", "specific", 1),
    ("Sorry, we don't price match online-only shops.", "specific", 1),
    ("Sorry, we can't do that one.", "generic", 1),
    ("Sorry Hugh, that's one we can't change: seat selection is a paid extra.", "generic", 1),
    # The news names the thing: "I regret to inform you that ..." (but not "the decision stands").
    ("I regret to inform you that room transfers are not possible after 1 November.", "specific", 1),
    # A failure named before an elliptical apology in the same sentence.
    ("We should have kept you informed and I'm sorry we didn't.", "specific", 1),
    ("Sorry, but I can't make any promises.", "generic", 1),
    ("Sorry, but our policy doesn't allow that.", "generic", 1),
    ("I regret to inform you that the decision stands.", "generic", 1),
    ("my bad, I sent you the wrong link", "specific", 1),
    # ... but a done-statement after it is the fix, not the failure (mail shape soc-03, h3-156's author).
    ("my bad, fixed now \U0001F44D", "generic", 1),
    ("My bad, all sorted!", "generic", 1),
    ("I\u2019m sorry about the trouble signing in.", "specific", 1),
    ("SO sorry! Really sorry about the delay. Apologies again, and sorry for the wait.", "specific", 4),
    ("We can't apologise enough for the mix-up with your booking.", "specific", 1),
    ("Sorry Dev, but orders can take up to 14 days.", "generic", 1),
    ("I'm very sorry: the fee in your offer letter was wrong.", "specific", 1),
    ("I’m really sorry – our driver left your parcel at number 14.", "specific", 1),
    # A limit that names what it limits (the fifth to thirteenth authors; the first four read these generic).
    ("Sorry, the Aria only comes in grey, navy and ochre.", "specific", 1),
    ("Sorry Theo, no dark mode yet!", "specific", 1),
    ("Sorry, which order was that?", "none", 0),
    ("sorry, could you send the order number?", "none", 0),
    ("Sorry?", "none", 0),
    ("I'm not sorry for enforcing the rules.", "none", 0),
    ("No need to apologise! Your refund is on its way.", "none", 0),
    ("You don't need to be sorry at all.", "none", 0),
    ("Unfortunately we can't refund opened items, I'm afraid.", "none", 0),
    # A pronoun pointing back at a failure named earlier in the sentence; a sign-off; a closure notice;
    # someone else's apology, reported; where it happened names nothing.
    ("Our courier left it at the wrong flat, and I apologise for that.", "specific", 1),
    ("Sorry about that!", "generic", 1),
    ("Your refund is done. Jo -- Sent from my iPad, sorry for the brevity", "none", 0),
    ("Thanks! Our desk is closed from 1 to 3 January. We apologise for any inconvenience.", "none", 0),
    ("Your manager spoke to the driver. She'll apologise when she next delivers.", "none", 0),
    ("We're sorry to hear about your visit to our Bristol store.", "generic", 1),
    ('You said "sorry isn\'t good enough" and I hear you.', "none", 0),
    # A bare apology closing a clause that named the failure; a statement after "but" whose subject names
    # a thing (session 7, the seventh to seventeenth authors). Near-misses stay generic.
    ("Ah yep, that's a bug on my end, sorry! The fix ships Friday.", "specific", 1),
    ("Five days is far too long, and I'm sorry.", "specific", 1),
    ("Thanks for waiting, sorry!", "generic", 1),
    ("Sorry, but tickets are non-refundable once the bus departs.", "specific", 1),
    ("I'm sorry, but the Standard plan's SLA is next business day.", "specific", 1),
    ("Sorry, but that is the policy.", "generic", 1),
    ("Sorry, but the answer is no.", "generic", 1),
    # "Our bad" is "my bad"; negated, passed-on and promised apologies are no apology of the agent's.
    ("Our bad! I've added credit to your account.", "generic", 1),
    ("No need to say sorry, ask away!", "none", 0),
    ("I'm not going to apologise for a sold-out croissant.", "none", 0),
    ("Jordan asked me to pass on that he's sorry about the tone of his earlier reply.", "none", 0),
    ("Our manager, Suresh, will call you this afternoon to apologise personally.", "none", 0),
    # The courtesy apology for a named lapse, and a carrier's apology passed on (h14-131's).
    ("Pardon the delay in getting back to you.", "specific", 1),
    ("Please excuse the slow reply, we've been swamped.", "specific", 1),
    ("Excuse me, could you send the order number?", "none", 0),
    ("There's no excuse for the delay; I've escalated it.", "none", 0),
    ("Apols for the wait! The courier say they're sorry for the delay.", "specific", 1),
    # The customer's apology, accepted, declined or passed on; a colleague's wish to apologise.
    ("Apology accepted, no harm done!", "none", 0),
    ("You don't owe us an apology at all.", "none", 0),
    ("I'll pass your apology on to Luis, our driver.", "none", 0),
    ("Our driver, Mr Shah, would like to apologise to you personally.", "none", 0),
    ("Kayleigh told me what happened and she'd like to apologise to your group herself.", "none", 0),
    ("I would like to apologise for the wait.", "specific", 1),
    # Session 8: the rest of a bare apology's sentence admits or names the failure (not the next sentence,
    # and not a "should have" put on the customer); a name after "sorry about that" names no failure; a
    # sender's label before a pardon-sorry; a weekly closure notice.
    ("I'm sorry, that's our mistake and it's why you got the wrong size.", "specific", 1),
    ("I'm really sorry, that was our mistake.", "generic", 1),
    ("Sorry, that timetable should have been taken down in September.", "specific", 1),
    ("You should have been told what was happening - sorry we didn't do that.", "specific", 1),
    ("Good catch, our help page was out of date, sorry about that.", "specific", 1),
    ("My apologies. Entering your room was a failure by our team.", "generic", 1),
    ("Sorry, but you should have read the terms before booking.", "generic", 1),
    ("Sorry about that Mike. Can you DM us the bus reg?", "generic", 1),
    ("Brackenford Council: Sorry, which permit do you have - resident or blue badge?", "none", 0),
    ("Our office is closed on Fridays. We're sorry for any inconvenience.", "none", 0),
    ("Sorry for the mix-up Gavin. Roaming is included in your bundle.", "generic", 1),
    ("Sorry for the trouble with Outlook. Here is the fix.", "specific", 1),
    ("Apologies in advance for the long email; three things changed.", "generic", 1),
    ("Your payout is sent. If you received it in error, we apologize; please delete it.", "none", 0),
    # Session 17, the dev halves of holdout55 and holdout56: a failure named after a bare sorry and a name, or
    # before it ("faulty", "wrongly"); not "that shouldn't have happened", which names none; feelings, and an
    # apology judged beside the point, which is none.
    ("Sorry Oliver, that fee shouldn't have been applied: the bay had a fault.", "specific", 1),
    ("I'm sorry, that shouldn't have happened. I've logged it with the team leader.", "generic", 1),
    ("so sorry, that one's clearly faulty! bring it in and I'll swap it", "specific", 1),
    ("The badge was showing wrongly on some titles yesterday, sorry!", "specific", 1),
    ("We are sorry for the distress this has caused you.", "generic", 1),
    ("Olivia, apologies aren't much use to you now, so here's what I've done instead.", "none", 0),
    ("An apology isn't enough here, so I've refunded the whole fitting.", "none", 0),
    ("He did look very sorry for himself in his cone, bless him.", "none", 0),
    ("Apologies are due: the fitter was rude, and I'm sorry.", "specific", 2),
    # Session 18: the idiom is no apology.
    ("Sorry, not sorry: all our branches are closed on Boxing Day.", "none", 0),
])
def test_apology_kind_and_count(policy: Policy, reply: str, kind: str, count: int) -> None:
    signals = judge(policy, reply).signals
    assert (signals.apology, signals.apology_count) == (kind, count)


@pytest.mark.parametrize(("reply", "said", "stance"), [
    ("I'm sorry this happened to you.", "My parcel is late.", "empathy"),
    ("I'm sorry we sent the wrong size.", "You sent the wrong size.", "responsibility"),
    ("Sorry for the inconvenience.", None, "empathy"),
    ("Sorry for the delay on our side.", None, "responsibility"),
    ("Sorry for the slow reply, Priya.", None, "responsibility"),
    ("Sorry about this. Our billing system overcharged you for March.", None, "responsibility"),
    ("I'm sorry the storm delayed your parcel; the courier resumes tomorrow.", "Storm delayed my parcel",
     "empathy"),
    # A refusal names what is refused, not a failure of ours: no implied responsibility for a faulty kettle.
    ("Sorry, but the damage charge stands.", "The kettle you sold me is faulty and burned my hand.", "empathy"),
])
def test_apology_stance(policy: Policy, reply: str, said: str | None, stance: str) -> None:
    assert judge(policy, reply, said).signals.apology_stance == stance


@pytest.mark.parametrize(("signal", "reply", "expected"), [
    ("liability_admission", "This was entirely our mistake.", True),
    ("liability_admission", "No need to apologise at all, it was our mess to sort out.", True),
    ("liability_admission", "He understands that what he did was wrong.", True),
    ("liability_admission", "I've looked into what went wrong with the upload.", False),
    ("liability_admission", "Sorry about our bad weather this week!", False),
    ("liability_admission", "That was an oversight on our part.", True),
    ("liability_admission", "We got this wrong, and I've fixed it.", True),
    ("liability_admission", "This was not our mistake; the courier lost it.", False),
    # "payment" ends in "nt": a loosened "n't" once read it as a negation and hid the admission.
    ("liability_admission", "You were charged twice due to a payment gateway error on our side.", True),
    ("liability_admission", "This isnt our fault, the courier lost it.", False),
    ("liability_admission", "We're aware of an outage affecting the app.", False),
    ("blame", "As I already explained, you should have read the size guide.", True),
    ("blame", "That's not our fault.", True),
    ("blame", "Per my last email, the fee stands.", True),
    ("blame", "It's not your fault at all, these things happen.", False),
    ("blame", "The card you entered had expired, so the payment didn't go through.", False),
    ("empathy", "I understand how frustrating this must be.", True),
    ("empathy", "That's not the experience we want for you.", True),
    ("empathy", "Four hours at the gate with no updates is rubbish.", True),
    ("empathy", "We understand you want a refund.", False),
    ("empathy", "Sorry to hear that.", False),
    ("solution", "I've issued a full refund.", True),
    ("solution", "Please DM us your order number.", True),
    ("solution", "A replacement ships tomorrow.", True),
    ("solution", "Follow the steps here: https://example.com/reset", True),
    ("solution", "Could you send me a screenshot of the error?", False),
    ("solution", "Our policy allows returns within 30 days: https://example.com/policy", False),
    ("prevention", "I've shared your feedback with our warehouse team so this doesn't happen again.", True),
    ("prevention", "We're adding extra checks to our release process.", True),
    ("prevention", "I've passed this to the team that can fix it.", False),
    ("liability_admission", "You're right - the listing was incorrect.", True),
    ("liability_admission", "The password was entered incorrectly five times, so the account locked.", False),
    ("empathy", "Unfortunately that ticket isn't valid on peak trains.", False),
    ("solution", "You can change it in the app: Settings > Account > Email.", True),
    ("solution", "We'll be in touch once the engineer's report is back.", False),
    ("solution", "Our technician, Sam, will call you tomorrow morning.", True),
    ("solution", "What I can do is move your booking to Friday at no charge.", True),
    ("solution", "Use code WINTER10 at checkout.", True),
    ("solution", "Please send us a photo of the jug and we will review your claim.", True),
    ("solution", "Could you send us a photo of the jug?", False),
    ("solution", "Our returns team has opened case RT-1182.", True),
    ("solution", "I'll make sure Priya sees this, she'll be thrilled!", False),
    ("empathy", "I can imagine how unsettling that was.", True),
    ("empathy", "That's an exhausting way to start the week.", True),
    ("empathy", "Please don't feel silly, it happens a lot.", True),
    ("empathy", "That's not how we want anyone treated.", True),
    ("blame", "You must have ticked the express box at checkout.", True),
    ("blame", "Delivery times are set by the carrier, so it's not something we can take responsibility for.", True),
    ("liability_admission", "We let you down on this one.", True),
    ("liability_admission", "The price in my previous email was wrong.", True),
    ("liability_admission", "The error was ours, not yours.", True),
    ("liability_admission", "It's the 12th; the 5th was a typo on our part.", True),
    ("liability_admission", "The assistant should have told you that.", True),
    ("liability_admission", "The courier should have left a card.", False),
    ("blame", "If it's wrong, that's because the reading you gave us was wrong.", True),
    ("blame", "Don't expect us to set it up for free.", True),
    ("blame", "Meters don't just jump by themselves.", True),
    ("prevention", "To stop this kind of regression reaching production, we added a replay test.", True),
    ("prevention", "We added the cases to our checks, so a change like this can't ship again.", True),
    ("prevention", "From today a second technician signs off every car.", True),
    ("empathy", "I appreciate the pressure this has put on you and your team.", True),
    ("empathy", "I understand this is a large and unexpected bill.", True),
    ("empathy", "I understand this is your account number.", False),
    # Wordings near the session-5 patterns that must not count.
    ("blame", "I'm so sorry you were emailed several times by mistake, I've removed the duplicate.", False),
    ("blame", "As your email explains, you were charged twice. I've refunded the second charge.", False),
    ("blame", "As the listing guide explains, authenticity photos are worth checking first.", True),
    ("blame", "I need you to calm down before we continue.", True),
    ("blame", "Being told to calm down is not acceptable.", False),
    # Session 7's rules, each with the near-miss it must leave alone.
    ("blame", "That's the courier's fault, not ours, you'll need to contact DPD directly.", True),
    ("blame", "Our servers were not breached; the attacker used an outdated plugin.", True),
    ("blame", "Kindly read the previous SMS fully and reply with your ID number.", True),
    ("blame", "Meal options are clearly displayed at the time of booking.", True),
    ("blame", "The scratch is clearly visible in the check-out photo, so I've refunded the charge.", False),
    ("blame", "You must have shared your OTP with a third party.", True),
    ("blame", "You must have been so worried when it didn't arrive.", False),
    ("blame", "If you'd put the right number on the form this wouldn't have happened.", True),
    ("blame", "This wouldn't have happened if our system had sent the reminder.", False),
    ("blame", "You should have it by Friday; the driver will phone first.", False),
    ("blame", "I'm sorry you felt talked down to in your last chat.", False),
    ("blame", "I'm sorry you feel that way, but the fee stands.", True),
    ("blame", "Sending multiple emails on the same concern may cause further delays.", True),
    ("blame", "The balance is yours under the treatment plan you signed on 2 September.", True),
    ("liability_admission", "It's our job to keep your data safe and it wasn't shared with anyone.", False),
    ("liability_admission", "It's my responsibility to make sure our rules are followed, and on this occasion "
                            "they weren't.", True),
    ("prevention", "I've passed your kind words to the manager at our Ferrybridge depot.", False),
    ("prevention", "I've spoken to Kyle's manager this morning.", True),
    ("prevention", "Clear your cache so all you see is the new page.", False),
    ("empathy", "The part can't be replaced, but we can repair it.", False),
    # Session 12's constructions, each with the near-miss it must leave alone.
    ("blame", "The period before that date cannot be treated as a delay on our part.", True),
    ("blame", "This was an error on our part and I've refunded the fee.", False),
    ("blame", "You chose Roadside when you joined in May rather than Roadside Plus.", True),
    ("blame", "The estimated wait was shown when you joined the queue.", True),
    ("blame", "Your new password was shown on screen, so I've reset it again for you.", False),
    ("blame", "Our packs comply with the laws of every country in which the game is sold.", True),
    ("blame", "Our records show that we wrote to you on 4 August asking for the claim form.", True),
    ("blame", "I can see it was sent to k.ross@mailbox.example on the 9th.", True),
    ("blame", "Our records show we refunded the £40 on Monday.", False),
    ("blame", "Our records show the fitter rang you twice, at 10:14 and 10:31.", True),
    ("blame", "You signed the invoice on collection.", True),
    ("blame", "Once the form is signed, the refund goes out the same day.", False),
    ("blame", "I can see the replacement was sent to your new address today.", False),
    ("empathy", "We're sorry for the suspension and for the worry it will have caused.", True),
    ("empathy", "I apologise for the stress this has caused.", False),
    ("empathy", "We regret any worry it may have caused.", False),
    ("empathy", "We know what a long, wasted day that was for you.", True),
    ("empathy", "I know how many hours went into it.", True),
    # Session 13's, the same way.
    ("blame", "Call-outs after 10pm are £180, as the technician explained before starting.", True),
    ("blame", "Your rep would have gone through the schedule with you when you signed.", True),
    ("blame", "The technician will explain the options before starting.", False),
    ("blame", "He found roots and needed the hydro-jetter, which he says you OK'd on site.", True),
    ("blame", "Once you've approved the quote we'll book the crew.", False),
    ("blame", "Your plan auto-renews, as described in the renewal notice we emailed you on August 3.", True),
    ("blame", "As described in the email we sent you, the refund takes five days.", False),
    ("blame", "Those are the right first checks, and our engineers follow a set script for a reason.", True),
    ("blame", "There's a reason for the delay: the part is on back order.", False),
    ("blame", "Gel lifting in the first week is nearly always down to aftercare.", True),
    ("blame", "Gel lifting in the first week is something we'll fix for free.", False),
    ("blame", "Freezing on that screen is usually caused by an unstable connection.", False),
    ("blame", "It's not creepy, it's how we keep fake accounts off the app.", True),
    ("blame", "I'm sorry, that was rude and you didn't deserve it.", False),
    ("blame", "Skin fade is £22 mate, the £18 is a standard cut. It's all on the board", True),
    ("blame", "Your name is on the board for Friday's class.", False),
    ("blame", "We asked you to step outside for a few minutes, which we feel is reasonable.", True),
    ("blame", "We feel a full refund is the right thing here.", False),
    ("blame", "You'd need to have checked the address before confirming the order.", True),
    ("blame", "You'd need to check the address before we can rebook it.", False),
    ("blame", "We cannot see any record of our team advising otherwise.", True),
    ("blame", "We have no record of your call, so please send the reference.", False),
    ("blame", "If you don't like it there are plenty of other garages.", True),
    ("blame", "If you don't like the colour we'll swap it free.", False),
    ("blame", "You signed our pre-delivery sheet confirming you were happy with how it drove.", True),
    ("blame", "Once you've signed the form we'll release the car.", False),
    ("blame", "The diagnostic covers one hour, as was explained to you at booking.", True),
    ("blame", "Paula, I was there and that's not what happened.", True),
    ("blame", "If that's not the case, please tell us and we'll look again.", False),
    ("blame", "For future reference, we did ask for this twice last month.", True),
    ("blame", "We asked the supplier for a new date this morning.", False),
    ("blame", "Your invoice is therefore correct.", True),
    ("blame", "Your refund is therefore due on Friday.", False),
    ("blame", "If this is not the case, let us know.", False),
    ("blame", "Charges follow the wear and tear guide, which you were sent at the start of your agreement.", True),
    ("blame", "Here is the guide you asked for.", False),
    ("blame", "As our letter of 14 October explained, we collected it again this month.", True),
    ("blame", "Our letter of 14 October is attached.", False),
    ("blame", "I did explain on the phone that I can only take instructions from the director.", True),
    ("blame", "I'll explain on the phone tomorrow.", False),
    ("blame", "I wasn't being dismissive, that's simply how I have to work.", True),
    ("blame", "We don't accept that the car park policy is discriminatory.", True),
    ("blame", "We don't accept cheques any more, but a card is fine.", False),
    ("blame", "If you only want stakes we won't offer, there are plenty of other bookmakers you're free to use.", True),
    ("blame", "There are plenty of other payment methods in the cashier.", False),
    ("blame", "It did not accuse you of anything, and I'd ask you to read it again.", True),
    ("blame", "I'd ask you to send it again from the address on your account.", False),
    ("blame", "You were asked three times for your account number and didn't provide it.", True),
    ("blame", "You were asked for your account number so we can find the bet.", False),
    ("liability_admission", "That was a mistake on her part and it shouldn't have happened.", True),
    ("liability_admission", "The card issuer says that was a mistake on their part.", False),
    ("liability_admission", "Our safer gambling adviser should not have discussed your account with others.", True),
    ("liability_admission", "Our adviser will discuss your account with you on Monday.", False),
    ("blame", "Our agents would never tell anyone there's no cap.", True),
    ("blame", "Our staff will never tell anyone your results.", False),
    ("blame", "This damage was not recorded on the check-in inventory you signed, so the charge will stand.", True),
    ("blame", "The inventory is attached for you to sign.", False),
    ("blame", "I did remind you on Thursday to put it in your bag.", True),
    ("blame", "I'll remind you on Thursday to put it in your bag.", False),
    ("liability_admission", "Steve was wrong to shout and swear at him, however the lesson was going.", True),
    ("liability_admission", "It was wrong to assume the fee had been waived.", False),
    ("blame", "Honestly, buying chargers off market stalls is asking for trouble.", True),
    ("blame", "Ask for a genuine charger at any of our stores.", False),
    ("blame", "As the app warns you before you empty Recently Deleted, this cannot be undone.", True),
    ("blame", "The app warns you before anything is deleted for good.", False),
    ("blame", "I can see you were told 60 days in chat on 3 October, so I'll honour that.", False),
    ("blame", "I can see you were told 30 days in chat on 3 October.", True),
    ("liability_admission", "That was my colleague's error, not yours.", True),
    ("liability_admission", "My colleague's notes say the part is on order.", False),
    ("blame", "Estimated times are estimates, and calling it lying isn't fair on crews.", True),
    ("blame", "Calling it in before 8pm gets a same-day visit.", False),
    ("blame", "He was on the public sidewalk. We consider this matter closed.", True),
    ("blame", "We consider this matter urgent and an engineer is on the way.", False),
    ("blame", "Please put your whole query in one message, as we've asked before.", True),
    ("blame", "As we've asked the council, bins go out by 7am.", False),
    ("blame", "You are not responsible for a debt in your husband's sole name.", False),
    ("blame", "We are not responsible for the private drain.", True),
    ("liability_admission", "Our call handler was wrong to say that to anyone.", True),
    ("liability_admission", "Our call handler will ring you to say when.", False),
    ("liability_admission", "The fee was charged in error by us and has been refunded.", True),
    ("liability_admission", "The letter was sent in error; please ignore it.", False),
    ("blame", "The adviser ended the call after two warnings. We operate a zero-tolerance policy towards abuse.", True),
    ("blame", "Our zero-tolerance policy on fare evasion is on every ticket machine.", False),
    ("blame", "So when it fell to £18 it did exactly what it's set up to do.", True),
    ("blame", "The new card does exactly what the old one did, with contactless added.", False),
    ("blame", "Our call notes show our adviser explained that you'd need to upload your ID.", True),
    ("blame", "Our call notes show our adviser promised a callback that never came.", False),
    ("blame", "We note that you have been reminded of the visitor policy on two previous occasions.", True),
    ("blame", "We note that you have moved in; welcome to Cobalt House.", False),
    ("blame", "We note that this is the third occasion this year on which it has been paid late.", True),
    ("blame", "You will have seen this covenant in your title documents before you completed.", True),
    ("blame", "You will have received a confirmation email with your tracking number.", False),
    ("blame", "The estimate was based on the online inventory you submitted, which didn't include the piano.", True),
    ("blame", "The estimate was based on the inventory you submitted, and includes the piano.", False),
    ("liability_admission", "I accept he raised his voice, and that was wrong of him, full stop.", True),
    ("liability_admission", "The courier left it in the rain; it was wrong of them.", False),
    # Session 15, the dev halves of holdout44 and holdout45.
    ("liability_admission", "Sorry bud thats on me. Come in tomorrow and ill blend it out, no charge", True),
    ("liability_admission", "Thats on the second floor, next to the lifts.", False),
    ("liability_admission", "Sorry again about my colleague earlier, he was out of order.", True),
    ("liability_admission", "Sorry, the lift was out of order when you visited.", False),
    ("blame", "You were told it was your responsibility to lock the unit.", True),
    ("blame", "I can imagine how upsetting it was to be told it was your fault in your own home.", False),
    ("empathy", "I know it's hard to plan jobs when the date keeps moving.", True),
    ("empathy", "I know it's possible to plan jobs around the new date.", False),
    ("empathy", "I know callbacks you can't charge for hurt.", True),
    ("empathy", "I appreciate it's been a long three weeks living with a tarpaulin roof.", True),
    ("empathy", "The repair takes three weeks and a long ladder.", False),
    ("empathy", "I understand how hurtful this must have been for you, and for your son to hear.", True),
    ("empathy", "I can understand how violating it feels to see your own car used in that way.", True),
    ("empathy", "We know how often it is used on the school run.", False),
    ("empathy", "You have nothing to feel foolish about.", True),
    ("empathy", "You have nothing to pay until the work is done.", False),
    ("empathy", "A buyer pulling out is outside our control, but I know that's no consolation.", True),
    ("empathy", "Don't worry, lots of business owners feel exactly the same about VAT.", True),
    ("empathy", "Lots of business owners register for VAT early.", False),
    # Session 15, the dev halves of holdout46 and holdout47.
    ("liability_admission", "Our website showed it in stock due to a sync error with our supplier's system.", False),
    ("liability_admission", "The price was wrong due to an error in our system.", True),
    ("liability_admission", "The charge was due to an error in our team's handling of your refund.", True),
    ("empathy", "I'm sorry you had to deal with that, and I understand why you don't feel safe.", True),
    ("empathy", "I understand why you don't need the second box.", False),
    ("empathy", "I understand why you don't feel the need to reply.", False),
    ("empathy", "I know how precious those last minutes are.", True),
    ("empathy", "I know how precious stones are graded: by colour and clarity.", False),
    ("empathy", "Please don't apologise, Joan. You've had the most awful few weeks.", True),
    ("empathy", "The last few weeks have been busy for the team.", False),
    ("empathy", "We've had a stressful few weeks in the warehouse.", False),
    ("empathy", "Being talked to like that when you're already waiting would wind anyone up.", True),
    ("empathy", "The crank would wind the awning up if the motor failed.", False),
    # Session 16, the dev halves of holdout52 and holdout53.
    ("blame", "The A record still points to your old host, which is why; it's not a delay on our end.", True),
    ("blame", "It's not a problem on our end to rebook you for Friday.", False),
    ("blame", "As our terms make clear, logins must not be shared with anyone else.", True),
    ("blame", "As our terms make a second login free, I've added one for your bookkeeper.", False),
    ("blame", "Please check sizes carefully before ordering, as exchanges carry a $99 pickup fee.", True),
    ("blame", "We check every sofa carefully before dispatch, so this one slipped through.", False),
    ("blame", "Exchanges due to customer ordering errors carry a $99 pickup fee.", True),
    ("blame", "Sorry, an ordering error on our side sent the wrong size.", False),
    # Session 16, a format audit's terse replies.
    ("solution", "Refund sent today Jo, sorry for the wait.", True),
    ("solution", "Engineer booked for Thursday 8-1, sorry again for the outage.", True),
    ("solution", "Hi Jo, your refund of £84 is processed and will show in 3-5 days.", True),
    ("solution", "Your refund is processed within 14 days of the return reaching us.", False),
    ("solution", "A refund is issued once we receive the item back.", False),
    ("solution", "I've pushed the refund through manually; it'll show in 3 days.", True),
    ("solution", "my bad, fixed now \U0001F44D", True),
    ("empathy", "We understand how damaging six hours offline is for a community that size.", True),
    ("empathy", "Here is how damaging files are found and quarantined.", False),
    ("empathy", "I can appreciate that with a client's office closed, every hour counts.", True),
    ("empathy", "I can confirm that with the office closed, every hour is billed.", False),
    ("empathy", "I appreciate that you were under a lot of pressure on the call.", True),
    ("empathy", "I understand you were under contract until May.", False),
    # Session 17, the dev halves of holdout55 and holdout56.
    ("empathy", "I understand how belittling that comment felt.", True),
    ("empathy", "I understand how that setting works.", False),
    ("liability_admission", "That agent should not have closed the chat while you were typing.", True),
    ("liability_admission", "That agent can close a chat after ten minutes without a reply.", False),
    ("liability_admission", "Breastfeeding is welcome, and the steward was wrong to ask you to leave.", True),
    ("liability_admission", "The steward was right to ask everyone to leave the tent during the storm.", False),
    ("liability_admission", "I've found Dan's email and he got that wrong: Plus is 20% off.", True),
    ("liability_admission", "Dan got that sorted for you on Monday.", False),
    ("blame", "Please push the bike into the dock until the light turns green, as the instructions on every dock say.",
     True),
    ("blame", "Push the bike in until the light turns green; the instructions on every dock show how.", False),
    ("blame", "The hours are on the signs at the entrance, so you needed to check those.", True),
    ("blame", "You needed to check in at the desk, so I've sent you the map.", False),
    ("blame", "The limit is on the pass screen, so it's worth reading those before you set off.", True),
    ("blame", "It's worth checking the app for live bike numbers.", False),
    ("blame", "For your information, our records show no problems were reported to us before this week.", True),
    ("blame", "Our records show that you chose a refund, which was paid on 3 June.", False),
    ("blame", "Our records show you confirmed this address twice at checkout.", True),
    ("blame", "I'm very sorry the installation was cancelled, by text, for the third time.", False),
    ("blame", "I am telling you for the third time that the refund has been issued.", True),
    ("blame", "You're right, I did say about £850 on the day, so I'll stick to it.", False),
    ("blame", "I don't think that should be your problem to sort out; I've opened a trace.", False),
    ("blame", "From your next ride the surcharge will apply as shown in the app.", False),
    ("blame", "Our records show you signed for this parcel yourself at 14:02 on Tuesday.", True),
    ("blame", "Prices went up on 1 Nov and we emailed every subscriber, so this shouldn't be a surprise.", True),
    ("blame", "We'd always recommend checking the straps before every walk.", True),
    ("blame", "We'd recommend the padded straps for a dog that pulls.", False),
    ("liability_admission", "Please don't be sorry: the fault here is ours.", True),
    ("liability_admission", "The fault is with the courier's scanner, not your parcel.", False),
    # A review of the session's rules: helpful replies and third parties they must not catch.
    ("blame", "I'm sorry you had to confirm your address three times. I've updated it.", False),
    ("blame", "I've cancelled the renewal, so there shouldn't be a surprise charge on your next bill.", False),
    ("blame", "As the guide in the app explains, hold the reset button for ten seconds.", False),
    ("blame", "Our records show you accepted the exchange on Monday, so your new pair ships today.", False),
    ("blame", "It's worth checking for an update before you try again; I've also sent you a fix.", False),
    ("blame", "For the last time, your refund was issued on Monday.", True),
    ("liability_admission", "It looks like Evri got the address wrong, so I've reshipped it.", False),
    ("liability_admission", "The courier was wrong to leave it on the doorstep; I've raised it with DPD.", False),
    ("liability_admission", "The fault lies with our courier partner, who scanned it to the wrong depot.", False),
    # Session 18, the dev halves of holdout58 and holdout59.
    ("blame", "Next time please keep the receipt with the paperwork, rather than us having to chase you for it.",
     True),
    ("blame", "Keep the receipt, and I'll chase the depot for you rather than you having to.", False),
    ("blame", "In future please do check you have all your belongings before you hand the car over.", True),
    ("blame", "Thanks for shopping with us! Next time, keep an eye out for our weekend deals.", False),
    ("blame", "As the confirmation email explains, check-in is from 3pm and your room is ready.", False),
    ("blame", "Transfers take two days to clear, which is why the invoice asks customers not to pay again by card.",
     True),
    ("blame", "Transfers take two days to clear, which is why I've refunded the card payment today.", False),
    ("blame", "Lithium batteries can't go by air, which is why we ask customers to post them separately.", False),
    ("blame", "The delivery receipt you signed shows you confirmed the training was completed.", True),
    ("liability_admission", "Two buses were off the road and we had too few drivers, which we got wrong.", True),
    ("liability_admission", "I'm sorry you feel the advert was misleading.", False),
    ("liability_admission", "You said we got your order wrong, and you're absolutely right, we did.", True),
    ("liability_admission", "The advert was misleading, and I'm sorry.", True),
    ("empathy", "It must have been a real fright for you both.", True),
    ("empathy", "Being stuck in one room without your chair is a really big deal.", True),
    ("empathy", "It's not a big deal, the part ships today.", False),
    ("empathy", "There's a really big deal on mattresses this weekend.", False),
    ("empathy", "We know the alarm test can scare pets, so we'll text you an hour before.", False),
    ("empathy", "It's been a hard few weeks for your family.", True),
    ("empathy", "Sorry Dave, it's been a nightmare month here with flu going round.", False),
    # Session 18, the dev half of holdout57.
    ("blame", "I think there's been a misunderstanding on your part: the nest can't be reached.", True),
    ("blame", "I think there's been a misunderstanding on our part, so I've rebooked the visit.", False),
    ("blame", "There was no misunderstanding on your part, the listing was wrong.", False),
    ("blame", "Our agent would have relied on the information you provided when booking.", True),
    ("blame", "Your quote is based on the details you provided, and I've attached it here.", False),
    ("blame", "Our records show the first two appointments were rescheduled at your request.", True),
    ("blame", "Our records show the appointment was moved by our office.", False),
    ("blame", "Our system shows the booking was cancelled by us, not by you, so I've refunded it.", False),
    ("blame", "I've moved it this time, but please do it in the app in future.", True),
    ("blame", "Please let us know in future if the side gate is locked.", False),
    ("blame", "Please keep your reference number handy in case you need it in future.", False),
    ("blame", "You signed the variation sheet approving it on the day.", True),
    ("blame", "That's no fun at all, and none of this is your fault.", False),
    ("empathy", "I know the timing couldn't be worse with Thanksgiving on Thursday.", True),
    ("empathy", "The timing of the visit is Thursday between 8 and 10.", False),
    ("empathy", "The worst time to call is Monday morning, so try after 2pm.", False),
    # Session 19, the dev halves of holdout60-62.
    ("blame", "The address was wrong. Next time please double-check your details before paying.", True),
    ("blame", "Someone 21+ has to sign, so please make sure you're home next time.", True),
    ("blame", "Next time, please let us know and we'll collect it from the porch.", False),
    ("blame", "In future, please book in the app: it's 10% cheaper than by phone.", False),
    ("blame", "Please make sure the code is on the box; next time we'll ship it with the label attached.", False),
    # Session 19, the dev halves of holdout63-68.
    ("blame", "We've asked you for the tax form twice already, and payouts are on hold until it arrives.", True),
    ("blame", "I've asked the warehouse twice already, and I'll chase again today.", False),
    ("blame", "That's our policy, and it isn't up for debate at the counter.", True),
    ("blame", "Nearly all sticking valves are caused by a lack of oiling.", True),
    # A review's everyday sentences, none of them blame.
    ("blame", "Going forward, please check the app for your new delivery slot.", False),
    ("blame", "For future reference, please keep this ticket number handy.", False),
    ("blame", "Please remember to claim your free coffee next time you're in store!", False),
    ("blame", "We've told you about the delay and will update you twice a day until it ships.", False),
    ("blame", "I've emailed you both invoices, as you were charged twice and both are now refunded.", False),
    ("blame", "Your safety is non-negotiable for us, so we've recalled the whole batch.", False),
    ("blame", "Your refund is not up for debate: it's approved and on its way.", False),
    ("blame", "Almost all of these errors are caused by incorrect settings on our server, now fixed.", False),
    ("blame", "Nearly every delay this month was due to poor weather at the depot.", False),
    ("blame", "Upgrading your plan won't make the download faster, since the limit is on our server.", False),
    ("blame", "You were right, the email said so, and I've applied the 20% off.", False),
    ("blame", "Nearly all the delays this week were caused by the storm, and I'm sorry yours was one.", False),
    ("blame", "Calling us every day won't make it any quicker.", True),
    ("blame", "Comparing us to other platforms won't make it faster.", True),
    ("blame", "Don't worry, a second email won't make it any slower: you keep your place in the queue.", False),
])
def test_reply_signals(policy: Policy, phrases_only: Policy, signal: str, reply: str, expected: bool) -> None:
    # Blame's near misses pin the phrases' edges. Its model (worker/engine/signals/reply_model.py) reads nine
    # of these 55 hand-written sentences as blame: each was written beside a phrase, sharing its words. The
    # model is measured on real replies instead (tests/unit/test_reply_model.py), and retraining it must not
    # move these.
    assert getattr(judge(phrases_only if signal == "blame" else policy, reply).signals, signal) is expected


@pytest.fixture(scope="module")
def phrases_only(policy: Policy) -> Policy:
    """The shipped policy without the reply models: the lexicon's phrases alone."""
    return dataclasses.replace(policy, lexicon=dataclasses.replace(policy.lexicon, reply_model=None))


@pytest.mark.parametrize(("said", "incident"), [
    ("My blender arrived with a cracked jug.", "defect"),
    ("I can't log in to the app since the update.", "defect"),
    ("My order still hasn't arrived after two weeks.", "delay"),
    ("You charged my card twice for the same order.", "billing"),
    ("Your agent was really rude to me and hung up.", "staff_conduct"),
    ("Your website said free returns but now you charge me a fee.", "misinformation"),
    ("The snowstorm cancelled my flight.", "beyond_control"),
    ("Someone used my card without permission, there are payments I didn't make.", "beyond_control"),
    ("Do you ship to Norway?", "other"),
    ("Thanks so much, that worked!", "none"),
    ("Thanks, that's all sorted now - the refund came through this morning. Appreciate it!", "none"),
    ("Thanks, but the refund still hasn't come through.", "billing"),
    ("Your app listed the satay bowl as nut-free and my son reacted to it.", "misinformation"),
    ("The seller sent me a fake and won't answer my messages.", "beyond_control"),
    ("@brand thanks for sorting my exchange so quickly!", "none"),
    ("Just confirming the replacement arrived this morning. Thanks", "none"),
    ("The shelf bracket came bent, can I get a new one?", "defect"),
    ("My boarding pass wouldn't scan at the gate.", "defect"),
    ("The waiter shouted at me in front of a room full of guests.", "staff_conduct"),
    ("A steward pushed my son out of the way.", "staff_conduct"),
    ("I left the shop in tears after what your assistant said to me: \"you people never read\".", "staff_conduct"),
    ("I've ordered the wrong size, can you swap it?", "beyond_control"),
    ("Roadworks on our street cut the phone line.", "beyond_control"),
    ("I asked for my certificate on 2 May and again on 19 May.", "delay"),
    ("Please stop sending me texts.", "other"),
    ("Why am I being charged £12 a month?", "billing"),
    ("Nearly one month and my passport still isn't back.", "delay"),
    ("My stroller arrived three weeks late, so I'm doing a chargeback.", "delay"),
    ("Ordered the oat latte, got a regular one.", "defect"),
    ("The cleaner wouldn't leave when I asked.", "staff_conduct"),
    ("My card keeps getting declined at checkout.", "billing"),
])
def test_incident(lexicon_only: Policy, said: str, incident: str) -> None:
    # The lexicon's cues, without the incident model's second opinion (tests/unit/test_incident_model.py):
    # on one-line messages like these the model rarely speaks, but where it does ("My card keeps getting
    # declined at checkout." reads as a defect to it) it is measured on held-out sets, not pinned here.
    assert judge(lexicon_only, "Thanks for your message.", said).context.incident == incident


@pytest.fixture(scope="module")
def lexicon_only(policy: Policy) -> Policy:
    return dataclasses.replace(policy, lexicon=dataclasses.replace(policy.lexicon, incident_model=None))


@pytest.mark.parametrize(("said", "legal"), [
    ("I'm speaking to my lawyer about this.", True),
    ("Otherwise my advocate will send you a legal notice.", True),
    ("I'll be contacting the RCVS.", True),
    ("I'll be making a complaint to the Dental Council.", True),
    ("My husband got a shock off the oven door.", True),
    ("What a shock to see that bill!", False),
    ("I contacted DPD and they said it was delivered.", False),
    ("I'll call HSBC tomorrow to stop the payment.", False),
    ("I will take you to small claims court.", True),
    ("I've reported you to Ofcom.", True),
    ("The kettle burned my hand.", True),
    ("This should be illegal, honestly.", False),
    ("Highway robbery, these prices.", False),
    ("I'll be taking this to the adjudicator.", True),
    ("We'll be seeking to recover the costs from you.", True),
    ("I slipped on the wet floor and have a bruise the size of a plum.", True),
    ("Can I park at Elm Court on Sundays?", False),
    ("The door swung back and I banged my knee.", True),
    ("If it's not refunded by Friday I'm going to ComReg.", True),
    ("I will report PayKo to the SEC and BSP.", True),
    ("Will file in consumer forum.", True),
    ("I'll take it to the TIO if I have to.", True),
    ("Give me a sec, I'll find the order number.", False),
    ("I'm coeliac and I've been sick all night.", True),
    ("I'm sick of waiting for this refund.", False),
    # Session 17: "sue" the verb, not Sue who looked after the dog; the US DOT, not a dot; a belt off the fuse board.
    ("Hi Sue, thank you for looking after Pickle so well!", False),
    ("Sue you? I will, if this isn't refunded by Friday.", True),
    ("Charged twice for Dot's groom on Friday.", False),
    ("I'm reporting this airline to the DOT.", True),
    ("Tom got a belt off the fuse board trying to reset it.", True),
    ("I got a belt from your store last week and the buckle snapped.", False),
    ("Thank you Sue for sorting this out.", False),
    # Session 18: a hospital as the reason for a request, not a harm (holdout58-59); a threat half-disowned is
    # still a threat.
    ("I don't want to sue but I will if you don't refund me.", True),
    ("My daughter went to hospital with burns from your kettle.", True),
    ("I need to cancel my parking next week, my mum's in hospital.", False),
    ("I had to move my appointment because my husband had been taken into hospital.", False),
    ("He was rushed to hospital after the stairlift jolted.", True),
    ("We spent the night in hospital after he ate your curry.", True),
])
def test_legal_risk(policy: Policy, said: str, legal: bool) -> None:
    assert judge(policy, "Thanks.", said).context.legal_risk is legal


def test_frustration_rises_with_anger(policy: Policy) -> None:
    calm = judge(policy, "Thanks.", "Hi, could you tell me when my order will ship? Thanks!").context.frustration
    angry = judge(policy, "Thanks.", "THIS IS THE THIRD TIME I'M ASKING!!! Absolutely unacceptable, "
                                     "worst service ever.").context.frustration
    assert 0.0 <= calm < 0.3 < 0.7 <= angry <= 1.0


@pytest.mark.parametrize("said", [
    "Really upset.",
    "The engineer shouted at me. Disgraceful.",
    "Hello? Anyone there? I've been waiting 3 days",
    "The engineer never turned up. I took a day off work for this.",
])
def test_complaint_language_vader_misses_still_reads_as_frustration(policy: Policy, said: str) -> None:
    assert judge(policy, "Thanks.", said).context.frustration >= 0.4


def test_an_angry_repeat_contact_reaches_the_presets_upset_threshold(policy: Policy) -> None:
    # 0.6 is where the presets' upset-customer rules start (blame-upset-customer, missing-empathy).
    said = "This is the third time I am asking!!! STILL not fixed"
    assert judge(policy, "Thanks.", said).context.frustration >= 0.6


@pytest.mark.parametrize("said", [
    "I dont like this at all.",  # a negator typed without its apostrophe
    "Nothing good about this update.",
    "I cant say I'm happy with the new plan.",
])
def test_frustration_reads_negated_praise(policy: Policy, said: str) -> None:
    """VADER turns negated praise negative; no word in these is negative on its own."""
    neutral = judge(policy, "Thanks.", "I have a question about the new plan.").context.frustration
    assert judge(policy, "Thanks.", said).context.frustration > neutral
