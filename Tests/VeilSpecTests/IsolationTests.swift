import Testing
import VeilSpec

/// The operator's level is a floor: the annotation raises it, lowers it only when allowed.
@Suite struct IsolationTests {
    let native = [IsolationLevel.annotation: "native"], sandbox = [IsolationLevel.annotation: "sandbox"]

    @Test func levelsAreOrdered() {
        #expect(IsolationLevel.native < .sandbox)
        #expect(IsolationLevel.default == .sandbox)
    }

    @Test func noAnnotationIsTheOperatorsLevel() throws {
        #expect(try IsolationLevel.resolve(annotations: nil, floor: nil, allowLowering: false) == .sandbox)
        #expect(try IsolationLevel.resolve(annotations: ["other": "x"], floor: .native, allowLowering: false) == .native)
    }

    @Test func annotationMayRaise() throws {
        #expect(try IsolationLevel.resolve(annotations: sandbox, floor: .native, allowLowering: false) == .sandbox)
        #expect(try IsolationLevel.resolve(annotations: sandbox, floor: nil, allowLowering: false) == .sandbox)
        #expect(try IsolationLevel.resolve(annotations: native, floor: .native, allowLowering: false) == .native)
    }

    @Test func loweringIsRefusedUnlessAllowed() throws {
        for floor in [nil, IsolationLevel.sandbox] {
            let error = #expect(throws: IsolationError.self) { try IsolationLevel.resolve(annotations: native, floor: floor, allowLowering: false) }
            #expect(error == .loweringRefused(requested: .native, floor: .sandbox, source: "annotations[\"dev.veil.isolation\"]"))
            let text = error?.description ?? ""
            #expect(text.contains("annotations[\"dev.veil.isolation\"]") && text.contains("allow_lower_isolation = true")
                    && text.contains("--allow-lower-isolation") && text.contains("veil-native"), "\(text)")
            #expect(try IsolationLevel.resolve(annotations: native, floor: floor, allowLowering: true) == .native)
        }
    }

    @Test func unknownLevelNamesItsSource() {
        let error = #expect(throws: IsolationError.self) { try IsolationLevel.resolve(annotations: [IsolationLevel.annotation: "vm"], floor: .native, allowLowering: true) }
        #expect(error?.source == "annotations[\"dev.veil.isolation\"]")
        #expect(error?.description.contains("unknown isolation level \"vm\"") == true)
    }
}
